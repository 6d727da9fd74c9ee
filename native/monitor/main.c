/* ocirt-monitor: one small process per container, in the role of conmon/containerd-shim.
 *
 * It runs `runc run -d` (with --start) or `runc create`, then stays the container's
 * parent (child subreaper), writes its stdout/stderr as a Docker json-file log,
 * optionally feeds its stdin from a socket, and records how it exited. It outlives the
 * process that launched it: it double-forks and calls setsid(), so the ocirt daemon can
 * restart (docs/kanto-compatibility.md decision 10).
 *
 * Division of work with the manager: the monitor runs one runc verb and then monitors;
 * kill/pause/delete are the manager's. With --start, runc creates and starts the
 * container in one process (the manager's start: one runc run instead of two). Without
 * it, the launcher runs `runc start` once launch() returned; until then the container's
 * init waits on runc's exec.fifo and runs no code.
 *
 * Readiness protocol (--sync-fd N, a pipe from the launcher; closed-on-exec here; sync.h
 * has the lines): {"monitorPid":N} right after detaching, then {"containerPid":N} or an
 * {"error":...} line once runc finished, then EOF. Line 1 lets the launcher kill a
 * monitor that never answers. On error the monitor exits and leaves no exit record.
 * The launcher (and the daemon's start answer) waits for EOF: what cannot fail the
 * launch is done after it (see main()).
 * "stderr" is runc's --log file (<state-dir>/runtime.log, JSON lines) followed by
 * whatever runc wrote on its stdio before failing.
 *
 * Reaping: while runc runs, only runc is waited for. The container's init becomes the
 * monitor's child only when runc exits (the monitor is the nearest subreaper), and it
 * is reaped only once its pid is known from runc's state.json, so its exit is never taken
 * for someone else's.
 *
 * Logging: blocking json-file logging of pipes goes through a disk spool beside the log
 * (spool.h), so the container waits for a copy into a file, not for the encoding; the
 * poll loop encodes directly where the spool cannot be had or fails (which it
 * survives, in order), with a tty and in non-blocking mode (ring.h, which drops).
 *
 * Exit: when the container's init is reaped, the monitor lets the spool's converter
 * finish, drains what is already in the stdio pipes (non-blocking: an escaped process
 * holding a pipe must not keep the monitor alive), reads the OOM counter, fsyncs the
 * log, replaces <state-dir>/exit.json atomically, sends the optional notice and exits.
 * The exit record therefore means the log is complete.
 *
 * Signals: SIGCHLD arrives through a signalfd. SIGTERM, SIGINT, SIGHUP and SIGQUIT
 * are ignored, not forwarded: the manager stops containers with `runc kill`, and a
 * signal sent to the daemon's session or terminal must not cut a container off from
 * its log and exit record. SIGKILL remains for a stuck monitor. No signal handlers are
 * installed, so there is no global state at all. */
#include "attach.h"
#include "detach.h"
#include "exitrec.h"
#include "jsonlog.h"
#include "logfile.h"
#include "oom.h"
#include "options.h"
#include "ring.h"
#include "runtime.h"
#include "spool.h"
#include "streams.h"
#include "sync.h"
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

#define READ_CHUNK 65536
_Static_assert(READ_CHUNK >= SPOOL_CHUNK, "the read buffer is lent to the spool");
#define RUNC_TEXT_MAX 8192
#define RUNTIME_LOG "runtime.log"


struct monitor {
	struct options o;
	int sfd;
	int console_fd;
	int pty;
	struct runtime_proc rp;
	struct stdio_stream *out;
	struct stdio_stream *err;
	bool runc_done;
	int runc_status;
	pid_t ctr_pid;
	bool ctr_done;
	int ctr_status;
	char runc_text[RUNC_TEXT_MAX];
	size_t runc_text_len;
	bool log_open;
	struct logfile lf;
	bool ring_on;
	struct logring ring;
	bool spool_on;
	struct spool spool;
	struct jsonlog_clock clock;
	char *scratch;
	bool attach_on;
	struct attach at;
	char attach_path[PATH_MAX];
	char console_path[PATH_MAX];
	char runtime_log[PATH_MAX];
	struct oom_watch oom;
};

/* ---- readiness reports (sync.h) ---- */

static void report_failure(struct monitor *m, const char *what, int err, int runtime_exit)
{
	sync_report_failure(&m->o.sync_fd, what, err, m->runc_text, m->runc_text_len,
			    runtime_exit);
}
/* ---- children ---- */

static void drain_signals(struct monitor *m)
{
	struct signalfd_siginfo si[8];
	while (util_read(m->sfd, si, sizeof(si)) > 0)
		;
}

/* While runc runs: wait for runc alone (see "Reaping" above). */
static void reap_runtime(struct monitor *m)
{
	drain_signals(m);
	int status;
	if (RETRY_EINTR(waitpid(m->rp.pid, &status, WNOHANG)) == m->rp.pid) {
		m->runc_done = true;
		m->runc_status = status;
	}
}

/* Once the container's pid is known: reap every child; other orphans are discarded. */
static void reap(struct monitor *m)
{
	drain_signals(m);
	for (;;) {
		int status;
		pid_t pid = RETRY_EINTR(waitpid(-1, &status, WNOHANG));
		if (pid <= 0)
			break;
		if (pid == m->ctr_pid) {
			m->ctr_done = true;
			m->ctr_status = status;
		}
	}
}

/* ---- logging ---- */

static void ring_sink(void *ctx, enum log_stream stream, const char *data, size_t len,
		      const struct timespec *ts)
{
	struct monitor *m = ctx;
	logring_push(&m->ring, stream, data, len, ts);
}

/* Messages of one read: to the non-blocking ring, or encoded straight into the log. */
static void feed(struct monitor *m, struct stdio_stream *s, const char *data, size_t n,
		 const struct timespec *now)
{
	if (!m->log_open)
		return; /* --log-driver none: output is drained and discarded */
	if (m->ring_on) {
		logring_begin(&m->ring);
		stdio_feed(s, data, n, now, ring_sink, m);
		logring_end(&m->ring);
		return;
	}
	stdio_feed_log(s, data, n, now, &m->lf, &m->clock);
}

static void finish_lines(struct monitor *m, struct stdio_stream *s)
{
	if (!m->log_open)
		return;
	if (m->ring_on) {
		logring_begin(&m->ring);
		stdio_finish(s, ring_sink, m);
		logring_end(&m->ring);
		return;
	}
	stdio_finish_log(s, &m->lf, &m->clock);
}

static void collect_runc_text(struct monitor *m, int fd)
{
	for (;;) {
		char buf[4096];
		ssize_t n = util_read(fd, buf, sizeof(buf));
		if (n <= 0)
			return;
		size_t room = RUNC_TEXT_MAX - m->runc_text_len;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(m->runc_text + m->runc_text_len, buf, take);
		m->runc_text_len += take;
	}
}

/* ---- phases ---- */

static int setup(struct monitor *m)
{
	int rc;
	if (m->o.log_path && !m->o.log_none) {
		rc = logfile_open(&m->lf, m->o.log_path, m->o.max_size, (int)m->o.max_files,
				  (unsigned)m->o.write_delay_ms);
		if (rc < 0) {
			report_failure(m, "cannot open the log file", rc, -1);
			return rc;
		}
		m->log_open = true;
	}
	m->scratch = malloc(READ_CHUNK);
	m->out = malloc(sizeof(*m->out));
	m->err = malloc(sizeof(*m->err));
	if (!m->scratch || !m->out || !m->err) {
		report_failure(m, "out of memory", -ENOMEM, -1);
		return -ENOMEM;
	}
	if (m->o.tty) {
		snprintf(m->console_path, sizeof(m->console_path), "%s/console.sock",
			 m->o.state_dir);
		unlink(m->console_path);
		m->console_fd = console_listen(m->console_path);
		if (m->console_fd < 0) {
			report_failure(m, "cannot listen on the console socket", m->console_fd, -1);
			return m->console_fd;
		}
	}
	return 0;
}

/* runc's --log file, then what it wrote on its stdio: the text reported on failure. */
static void take_runtime_log(struct monitor *m)
{
	char text[RUNC_TEXT_MAX];
	ssize_t n = util_read_file(m->runtime_log, text, sizeof(text));
	if (n <= 0)
		return;
	size_t keep = m->runc_text_len;
	if ((size_t)n + keep > RUNC_TEXT_MAX)
		keep = RUNC_TEXT_MAX - (size_t)n;
	memmove(m->runc_text + n, m->runc_text, keep);
	memcpy(m->runc_text, text, (size_t)n);
	m->runc_text_len = (size_t)n + keep;
}

/* Fresh for each run, so a failure reports this run's messages only. */
static int reset_runtime_log(struct monitor *m)
{
	if (snprintf(m->runtime_log, sizeof(m->runtime_log), "%s/%s", m->o.state_dir,
		     RUNTIME_LOG) >= (int)sizeof(m->runtime_log))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = RETRY_EINTR(
		open(m->runtime_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
	return fd < 0 ? -errno : 0;
}

static int run_runtime(struct monitor *m, const char *child_oom)
{
	int rc = reset_runtime_log(m);
	if (rc < 0) {
		report_failure(m, "cannot create the runtime log", rc, -1);
		return rc;
	}
	struct runtime_spawn_opts so = {
		.runtime = m->o.runtime, .root = m->o.root, .bundle = m->o.bundle,
		.id = m->o.id, .log_file = m->runtime_log,
		.console_socket = m->o.tty ? m->console_path : NULL, .start = m->o.start,
		.open_stdin = m->o.open_stdin, .child_oom_score_adj = child_oom};
	rc = runtime_spawn(&so, &m->rp);
	if (rc < 0) {
		report_failure(m, "cannot start the runtime", rc, -1);
		return rc;
	}
	/* With a tty, stderr_fd carries only runc's own output. Without one, both pipes are
	 * the container's stdio: after `create` nothing of the container's can be there yet,
	 * but after `run` its output can, and it belongs in the log, so they are left for
	 * run() (the pipe buffers them; runc's exit does not wait for the container). */
	bool runc_pipes = m->o.tty || !m->o.start;
	while (!m->runc_done) {
		struct pollfd pfd[4] = {
			{.fd = m->sfd, .events = POLLIN},
			{.fd = runc_pipes ? m->rp.stderr_fd : -1, .events = POLLIN},
			{.fd = runc_pipes ? m->rp.stdout_fd : -1, .events = POLLIN},
			{.fd = m->pty < 0 ? m->console_fd : -1, .events = POLLIN},
		};
		if (RETRY_EINTR(poll(pfd, ARRAY_SIZE(pfd), -1)) < 0) {
			report_failure(m, "poll", -errno, -1);
			return -errno;
		}
		if (pfd[0].revents)
			reap_runtime(m);
		if (pfd[1].revents)
			collect_runc_text(m, m->rp.stderr_fd);
		if (pfd[2].revents)
			collect_runc_text(m, m->rp.stdout_fd);
		if (pfd[3].revents && (rc = console_receive(m->console_fd, &m->pty)) < 0)
			util_warn(rc, "receiving the pty");
	}
	int status = m->runc_status;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* Whatever is in the pipes now is runc's (a usage error), or output of a
		 * container that runc failed to finish starting: either explains the failure. */
		collect_runc_text(m, m->rp.stderr_fd);
		if (m->rp.stdout_fd >= 0)
			collect_runc_text(m, m->rp.stdout_fd);
		take_runtime_log(m);
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		report_failure(m, m->o.start ? "runtime run failed" : "runtime create failed", 0,
			       code);
		return -ECHILD;
	}
	if (runc_pipes) {
		collect_runc_text(m, m->rp.stderr_fd);
		if (m->rp.stdout_fd >= 0)
			collect_runc_text(m, m->rp.stdout_fd);
	}
	if (m->o.tty && m->pty < 0) {
		/* runc sends the pty before it exits; its connection may still be queued. */
		rc = console_receive(m->console_fd, &m->pty);
		if (rc < 0) {
			report_failure(m, "the runtime sent no pty", rc, 0);
			return rc;
		}
	}
	pid_t pid = 0;
	rc = runtime_state_init_pid(m->o.root, m->o.id, &pid);
	if (rc < 0) {
		report_failure(m, "cannot read the container's pid from the runtime's state", rc, 0);
		return rc;
	}
	m->ctr_pid = pid;
	if (m->runc_text_len > 0)
		util_warn(0, "runtime said: %.*s", (int)m->runc_text_len, m->runc_text);
	return 0;
}

/* A spool failure: let the converter finish what is spooled, then read directly. */
static void spool_failed(struct monitor *m)
{
	util_warn(m->spool.error, "the log spool failed; writing the log directly from now on");
	spool_stop(&m->spool);
	m->spool_on = false;
}

/* One read of s into the log (or the spool): bytes read, 0 at EOF, or -errno. */
static ssize_t pump(struct monitor *m, struct stdio_stream *s)
{
	if (m->spool_on) {
		ssize_t n = spool_take(&m->spool, s);
		if (n != SPOOL_BROKEN)
			return n;
		spool_failed(m);
	}
	ssize_t n = stdio_fill(s, m->scratch, READ_CHUNK);
	if (n <= 0)
		return n;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	feed(m, s, m->scratch, (size_t)n, &now);
	return n;
}

static void drain(struct monitor *m, struct stdio_stream *s)
{
	while (!s->eof && pump(m, s) > 0)
		;
}

static void run(struct monitor *m)
{
	enum { FIXED = 4 };
	while (!m->ctr_done) {
		/* A full spool: leave the pipes alone (the container blocks in write()) until
		 * the converter has made room and says so through wake_fd. */
		bool hold = m->spool_on && spool_full(&m->spool);
		struct pollfd pfd[FIXED + ATTACH_MAX_CLIENTS + 2];
		pfd[0] = (struct pollfd){.fd = m->sfd, .events = POLLIN};
		int out_fd = hold || m->out->eof ? -1 : m->out->fd;
		int err_fd = hold || m->err->eof ? -1 : m->err->fd;
		pfd[1] = (struct pollfd){.fd = out_fd, .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = err_fd, .events = POLLIN};
		pfd[3] = (struct pollfd){.fd = hold ? m->spool.wake_fd : -1, .events = POLLIN};
		size_t n = FIXED;
		if (m->attach_on)
			n += attach_fill(&m->at, pfd + FIXED, ARRAY_SIZE(pfd) - FIXED);
		if (RETRY_EINTR(poll(pfd, n, -1)) < 0) {
			util_warn(-errno, "poll");
			continue;
		}
		if (pfd[3].revents && m->spool_on)
			spool_woken(&m->spool);
		bool got = false;
		for (int i = 1; i <= 2; i++) {
			struct stdio_stream *s = i == 1 ? m->out : m->err;
			if (pfd[i].revents && pump(m, s) > 0)
				got = true;
		}
		if (got && m->log_open && !m->ring_on && !m->spool_on)
			logfile_flush(&m->lf);
		if (m->attach_on)
			attach_handle(&m->at, pfd + FIXED, n - FIXED);
		if (pfd[0].revents)
			reap(m);
	}
}

static void finish(struct monitor *m)
{
	/* The spool first (everything it holds was read before what is still in the pipes),
	 * then the pipes directly: the log file is the main thread's again. */
	if (m->spool_on) {
		spool_stop(&m->spool);
		m->spool_on = false;
	}
	drain(m, m->out);
	drain(m, m->err);
	finish_lines(m, m->out);
	finish_lines(m, m->err);
	struct exit_record rec = exitrec_from_status(m->ctr_pid, m->ctr_status);
	rec.oom_killed = oom_watch_fired(&m->oom);
	if (m->ring_on)
		rec.dropped += logring_stop(&m->ring);
	if (m->log_open) {
		rec.dropped += m->lf.lost;
		int rc = logfile_close(&m->lf);
		if (rc < 0)
			util_warn(rc, "syncing the log");
	}
	/* Everything else is torn down first: the exit record means "all done". */
	if (m->attach_on)
		attach_close(&m->at, m->attach_path);
	m->attach_on = false;
	int rc = exitrec_write(m->o.state_dir, &rec);
	if (rc < 0)
		util_warn(rc, "writing the exit record");
	if (m->o.notify_socket)
		exitrec_notify(m->o.notify_socket, m->o.id, &rec);
}

/* ---- start-up ---- */

/* Blocking json-file logging of pipes goes through the disk spool (spool.h); without
 * one (it cannot be created) the poll loop encodes directly, as in the other modes. */
static void start_spool(struct monitor *m)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", m->o.log_path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	uint64_t cap = m->o.spool_cap ? m->o.spool_cap
				      : spool_default_cap(m->o.max_size, m->o.max_files);
	int rc = spool_start(&m->spool, dir, cap, m->o.spool_fail_after, m->scratch, m->out,
			     m->err, &m->lf, &m->clock);
	if (rc < 0) {
		util_warn(rc, "no log spool in %s; writing the log directly", dir);
		return;
	}
	m->spool_on = true;
}

/* <pid-file>: the container's pid, for finding this monitor again when its handle is
 * lost (monitor.find_handle); not synced (a power cut ends the container too). */
static void keep_pid(struct monitor *m)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%d\n", (int)m->ctr_pid);
	int rc = util_replace_file(m->o.pid_file, line, (size_t)n);
	if (rc < 0)
		util_warn(rc, "writing %s", m->o.pid_file);
}

static void watch_oom(struct monitor *m)
{
	if (m->o.oom_watch_late) {
		util_warn(0, "test hook: arming the watch once pid %d is exiting", (int)m->ctr_pid);
		int late = oom_test_wait_exiting(m->ctr_pid, 60);
		if (late < 0)
			util_warn(late, "test hook: pid %d is not exiting", (int)m->ctr_pid);
	}
	int rc = oom_watch_init(&m->oom, m->ctr_pid, m->o.start);
	if (rc == -ESRCH) {
		char state[PATH_MAX];
		if (snprintf(state, sizeof(state), "%s/%s/state.json", m->o.root, m->o.id) <
		    (int)sizeof(state))
			rc = oom_watch_init_runc_state(&m->oom, state, m->o.start);
		else
			rc = -ENAMETOOLONG;
	}
	if (rc < 0)
		util_warn(rc, "no OOM counter for pid %d (from /proc, or runc's state.json once "
			  "it is exiting); oomKilled will be false", (int)m->ctr_pid);
}


int main(int argc, char **argv)
{
	static struct monitor mon; /* one instance; static only to keep it off the stack */
	struct monitor *m = &mon;
	m->console_fd = m->pty = m->sfd = -1;
	m->rp = (struct runtime_proc){.stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
	if (options_parse(argc, argv, &m->o) < 0) {
		options_usage();
		return 2;
	}
	if (m->o.sync_fd >= 0 && util_set_cloexec(m->o.sync_fd) < 0) {
		util_warn(-errno, "--sync-fd %d", m->o.sync_fd);
		return 2;
	}
	int rc = detach_from_launcher();
	if (rc < 0) {
		report_failure(m, "cannot detach", rc, -1);
		return 1;
	}
	sync_report_pid(m->o.sync_fd, "monitorPid", getpid());

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		report_failure(m, "cannot become a child subreaper", -errno, -1);
		return 1;
	}
	char saved_oom[32];
	detach_protect_from_oom(saved_oom, sizeof(saved_oom));
	m->sfd = detach_signals();
	if (m->sfd < 0) {
		report_failure(m, "cannot set up signals", m->sfd, -1);
		return 1;
	}
	if (setup(m) < 0)
		return 1;
	/* Before runc: the write takes the space before the container can run; its fsync
	 * waits until the start is reported (exitrec.h). */
	_cleanup_close_ int reserved = exitrec_reserve(m->o.state_dir);
	if (reserved < 0)
		util_warn(reserved, "reserving space for the exit record (a full disk may lose it)");
	if (m->o.open_stdin) {
		snprintf(m->attach_path, sizeof(m->attach_path), "%s/attach.sock", m->o.state_dir);
		unlink(m->attach_path);
		rc = attach_open(&m->at, m->attach_path, -1);
		if (rc < 0) {
			report_failure(m, "cannot listen on the attach socket", rc, -1);
			return 1;
		}
		m->attach_on = true;
	}
	if (run_runtime(m, saved_oom[0] ? saved_oom : NULL) < 0) {
		if (m->attach_on)
			attach_close(&m->at, m->attach_path);
		if (m->o.tty)
			unlink(m->console_path);
		return 1;
	}
	if (m->o.tty) {
		util_closep(&m->console_fd);
		unlink(m->console_path);
		stdio_init(m->out, m->pty, STREAM_STDOUT);
		/* runc's own output pipe: nothing of the container's arrives there. */
		stdio_init(m->err, -1, STREAM_STDERR);
		m->err->eof = true;
		util_closep(&m->rp.stderr_fd);
	} else {
		stdio_init(m->out, m->rp.stdout_fd, STREAM_STDOUT);
		stdio_init(m->err, m->rp.stderr_fd, STREAM_STDERR);
	}
	m->at.target = m->o.tty ? m->pty : m->rp.stdin_fd;
	if (m->log_open && m->o.non_blocking) {
		rc = logring_start(&m->ring, &m->lf, (size_t)m->o.max_buffer);
		if (rc < 0) {
			report_failure(m, "cannot start the log writer", rc, 0);
			return 1;
		}
		m->ring_on = true;
	}
	/* Before the report: a launch that returned has its log path in place (the spool
	 * costs ~60 us; tests/integration/monitor/test_spool.py counts on it). */
	if (m->log_open && !m->o.non_blocking && !m->o.tty)
		start_spool(m);
	/* The launcher waits for this line (the container runs). What cannot fail the launch
	 * comes after it: the OOM watch (it counts from the fresh cgroup's zero) and the
	 * exit record's fsync (before run(), so before the record can be written). */
	sync_report_pid(m->o.sync_fd, "containerPid", m->ctr_pid);
	sync_close(&m->o.sync_fd);
	watch_oom(m);
	keep_pid(m);
	if (reserved >= 0 && (rc = exitrec_reserve_sync(util_take_fd(&reserved))) < 0)
		util_warn(rc, "syncing the space reserved for the exit record");
	/* SIGCHLD for an init that died early was drained while runc ran: look now. */
	reap(m);

	run(m);
	finish(m);
	return 0;
}