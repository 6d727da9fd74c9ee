/* Writing exit.json and the exit notice. Does I/O. */
#include "exitrec.h"

#include "jsonlog.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

struct exit_record exitrec_from_status(pid_t pid, int wait_status)
{
	struct exit_record r = {.pid = pid};
	if (WIFSIGNALED(wait_status)) {
		r.signal = WTERMSIG(wait_status);
		r.exit_code = 128 + r.signal;
	} else {
		r.exit_code = WEXITSTATUS(wait_status);
	}
	clock_gettime(CLOCK_REALTIME, &r.finished);
	return r;
}

#define EXITREC_MAX 512

int exitrec_reserve(const char *state_dir)
{
	return util_reserve_file(state_dir, "exit.json", EXITREC_MAX);
}

int exitrec_reserve_sync(int fd)
{
	return util_sync_close(fd);
}

int exitrec_write(const char *state_dir, const struct exit_record *r)
{
	struct jsonlog_clock clk = {0};
	char when[JSONLOG_TIME_MAX], sig[32] = "", buf[EXITREC_MAX];
	when[jsonlog_format_time(&clk, &r->finished, when)] = '\0';
	if (r->signal)
		snprintf(sig, sizeof(sig), "\"signal\":%d,", r->signal);
	int n = snprintf(buf, sizeof(buf),
			 "{\"exitCode\":%d,%s\"finishedAt\":\"%s\",\"oomKilled\":%s,"
			 "\"droppedLogLines\":%llu,\"containerPid\":%d}\n",
			 r->exit_code, sig, when, r->oom_killed ? "true" : "false",
			 (unsigned long long)r->dropped, (int)r->pid);
	if (n < 0 || n >= (int)sizeof(buf))
		return -EOVERFLOW;
	return util_write_file_atomic(state_dir, "exit.json", buf, (size_t)n);
}

static int send_notice(int type, const struct sockaddr_un *addr, const char *msg, size_t len)
{
	_cleanup_close_ int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (RETRY_EINTR(connect(fd, (const struct sockaddr *)addr, sizeof(*addr))) < 0)
		return -errno;
	ssize_t n = RETRY_EINTR(send(fd, msg, len, MSG_NOSIGNAL));
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EAGAIN;
}

void exitrec_notify(const char *socket_path, const char *id, const struct exit_record *r)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(socket_path) >= sizeof(addr.sun_path)) {
		util_warn(-ENAMETOOLONG, "notify socket %s", socket_path);
		return;
	}
	strcpy(addr.sun_path, socket_path);
	size_t idlen = strnlen(id, 256);
	char esc[256 * 6 + 1], msg[2048];
	esc[jsonlog_escape(id, idlen, esc)] = '\0';
	int n = snprintf(msg, sizeof(msg), "{\"id\":\"%s\",\"exitCode\":%d}\n", esc, r->exit_code);
	if (n < 0 || n >= (int)sizeof(msg))
		return;
	int rc = send_notice(SOCK_DGRAM, &addr, msg, (size_t)n);
	/* EPROTOTYPE: the listener is a stream socket. */
	if (rc == -EPROTOTYPE)
		rc = send_notice(SOCK_STREAM, &addr, msg, (size_t)n);
	if (rc < 0)
		util_warn(rc, "notifying %s (ignored)", socket_path);
}
