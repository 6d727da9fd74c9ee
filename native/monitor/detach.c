/* Detaching, OOM protection and signals: see detach.h. */
#include "detach.h"
#include "util.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* Detach from the launcher: the monitor proper is not a session leader (so it can never
 * acquire a controlling terminal) and is re-parented to init, so killing the launcher
 * cannot reach it. A launcher that started us as a session leader already (ocirt's
 * does: setsid in the child before exec) saves a fork: we fork once and the leader
 * exits, to be reaped by the launcher. Otherwise the classic double fork: the first
 * process reaps the session leader before it exits, so no zombie is left behind where
 * PID 1 does not reap orphans (as in some containers). */
int detach_from_launcher(void)
{
	pid_t pid;
	if (getsid(0) != getpid()) {
		pid = fork();
		if (pid < 0)
			return -errno;
		if (pid > 0) {
			int status;
			if (RETRY_EINTR(waitpid(pid, &status, 0)) < 0)
				_exit(1);
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
		}
		if (setsid() < 0)
			return -errno;
	}
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		return -errno;
	return 0;
}

/* Keep the kernel's OOM killer off the monitor; the value it had is returned so the
 * runtime (and thus the container) gets it back. */
void detach_protect_from_oom(char *saved, size_t size)
{
	saved[0] = '\0';
	if (util_read_file("/proc/self/oom_score_adj", saved, size) <= 0) {
		saved[0] = '\0';
		return;
	}
	saved[strcspn(saved, "\n")] = '\0';
	_cleanup_close_ int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || util_write_all(fd, "-1000", 5) < 0)
		util_warn(-errno, "setting oom_score_adj (continuing)");
}

int detach_signals(void)
{
	static const int ignored[] = {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGQUIT};
	for (size_t i = 0; i < ARRAY_SIZE(ignored); i++)
		if (signal(ignored[i], SIG_IGN) == SIG_ERR)
			return -errno;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}
