/* Spawning `runc run -d` or `runc create`, and the console-socket handshake. Does I/O. */
#include "runtime.h"

#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

/* Runs in the forked child: only async-signal-safe calls until exec. */
static void __attribute__((noreturn))
child_exec(const struct runtime_spawn_opts *o, int in, int out, int err)
{
	sigset_t none;
	sigemptyset(&none);
	/* The monitor ignores some signals and blocks SIGCHLD; dispositions set to ignore
	 * and the mask survive exec, and the container must start with clean ones. */
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* If the monitor dies mid-create nobody could report the result: take runc too. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (o->child_oom_score_adj) {
		_cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (fd >= 0)
			(void)!write(fd, o->child_oom_score_adj, strlen(o->child_oom_score_adj));
	}
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(126);
	const char *argv[24];
	int i = 0;
	argv[i++] = o->runtime;
	argv[i++] = "--root";
	argv[i++] = o->root;
	argv[i++] = "--log";
	argv[i++] = o->log_file;
	argv[i++] = "--log-format";
	argv[i++] = "json";
	if (o->start) {
		argv[i++] = "run";
		argv[i++] = "--detach";
	} else {
		argv[i++] = "create";
	}
	argv[i++] = "--bundle";
	argv[i++] = o->bundle;
	if (o->console_socket) {
		argv[i++] = "--console-socket";
		argv[i++] = o->console_socket;
	}
	argv[i++] = o->id;
	argv[i] = NULL;
	execvp(o->runtime, (char *const *)argv);
	static const char msg[] = "ocirt-monitor: cannot execute the runtime\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(127);
}

static int make_pipe(int fds[2])
{
	return pipe2(fds, O_CLOEXEC) < 0 ? -errno : 0;
}

int runtime_spawn(const struct runtime_spawn_opts *o, struct runtime_proc *p)
{
	_cleanup_close_ int in_r = -1, in_w = -1, out_r = -1, out_w = -1, err_r = -1, err_w = -1;
	int fds[2], rc;

	if (o->open_stdin && !o->console_socket) {
		if ((rc = make_pipe(fds)) < 0)
			return rc;
		in_r = fds[0];
		in_w = fds[1];
	} else {
		in_r = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (in_r < 0)
			return -errno;
	}
	if ((rc = make_pipe(fds)) < 0)
		return rc;
	err_r = fds[0];
	err_w = fds[1];
	if (o->console_socket) {
		out_w = fcntl(err_w, F_DUPFD_CLOEXEC, 3);
		if (out_w < 0)
			return -errno;
	} else {
		if ((rc = make_pipe(fds)) < 0)
			return rc;
		out_r = fds[0];
		out_w = fds[1];
		/* A non-root container user must be able to reopen /dev/stdout (conmon). */
		if (fchmod(out_w, 0777) < 0 || fchmod(err_w, 0777) < 0 ||
		    (in_w >= 0 && fchmod(in_r, 0777) < 0))
			return -errno;
	}

	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_exec(o, in_r, out_w, err_w);

	if ((out_r >= 0 && (rc = util_set_nonblock(out_r)) < 0) ||
	    (rc = util_set_nonblock(err_r)) < 0 || (in_w >= 0 && (rc = util_set_nonblock(in_w)) < 0))
		return rc;
	p->pid = pid;
	p->stdin_fd = in_w;
	p->stdout_fd = out_r;
	p->stderr_fd = err_r;
	in_w = out_r = err_r = -1; /* now owned by p */
	return 0;
}

int console_listen(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 16) < 0)
		return -errno;
	return util_take_fd(&fd);
}

int console_receive(int listen_fd, int *pty_master)
{
	_cleanup_close_ int conn = RETRY_EINTR(accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC));
	if (conn < 0)
		return -errno;
	/* runc sends right after connecting; the timeout only guards against a peer that
	 * connects and then hangs. */
	struct timeval tv = {.tv_sec = 10};
	if (setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	char name[4096];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = name, .iov_len = sizeof(name)};
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf)};
	ssize_t n = RETRY_EINTR(recvmsg(conn, &msg, MSG_CMSG_CLOEXEC));
	if (n < 0)
		return -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EBADMSG;
	_cleanup_close_ int fd = -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	int rc = util_set_nonblock(fd);
	if (rc < 0)
		return rc;
	*pty_master = util_take_fd(&fd);
	return 0;
}

int runtime_state_init_pid(const char *root, const char *id, pid_t *pid)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s/state.json", root, id) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	_cleanup_free_ char *buf = NULL;
	ssize_t len = util_read_alloc(path, RUNC_STATE_MAX, &buf);
	if (len < 0)
		return (int)len;
	/* A top-level number of libcontainer's State, written before its config; inside
	 * any JSON string the quotes of this text would be escaped, so it cannot match. */
	static const char key[] = "\"init_process_pid\":";
	const char *at = memmem(buf, (size_t)len, key, sizeof(key) - 1);
	if (at == NULL)
		return -EINVAL;
	long long v = 0;
	const char *d = at + sizeof(key) - 1;
	if (*d < '1' || *d > '9')
		return -EINVAL;
	for (; *d >= '0' && *d <= '9'; d++) {
		v = v * 10 + (*d - '0');
		if (v > INT_MAX)
			return -ERANGE;
	}
	*pid = (pid_t)v;
	return 0;
}
