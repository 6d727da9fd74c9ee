/* Running `<runtime> run -d` (or `create`) with the container's stdio wired to the
 * monitor, and receiving the pty master over the console socket. Does I/O.
 *
 * Pass-through (no tty): runc's fds 0/1/2 become the container's stdio (runc's own
 * docs/terminals.md), so the monitor hands runc the worker ends of pipes. It never
 * waits for EOF on them (the container holds them; runc#1721): it waits for runc's exit
 * status. runc's own messages go to its --log file (JSON lines), never to those pipes:
 * with `run` the container's code may write before runc has exited, and none of runc's
 * text may end up in the container's log. With --log set, runc 1.1 writes its final
 * error there only, so the monitor reports that file on failure.
 * Tty: runc connects to a SOCK_STREAM pathname socket and sends the pty master with
 * SCM_RIGHTS; runc's own stdout/stderr then go to a separate pipe.
 *
 * No --pid-file: runc 1.1 writes it with O_SYNC, a synchronous disk write on the way of
 * every start (slow on flash); the init's pid is read from the state.json runc writes
 * anyway (runtime_state_init_pid), and the monitor keeps its own copy of it. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct runtime_spawn_opts {
	const char *runtime;
	const char *root;
	const char *bundle;
	const char *id;
	const char *log_file;       /* runc --log, written as JSON lines */
	const char *console_socket; /* NULL unless tty */
	bool start;                 /* `run -d` (create and start) instead of `create` */
	bool open_stdin;
	const char *child_oom_score_adj; /* restored in runc so the container does not inherit
					  * the monitor's -1000; NULL to leave as is */
};

struct runtime_proc {
	pid_t pid;
	int stdin_fd;  /* write end of the container's stdin pipe, or -1 */
	int stdout_fd; /* container stdout (pass-through), or -1 with a tty */
	int stderr_fd; /* container stderr (pass-through), or runc's own output (tty) */
};

int runtime_spawn(const struct runtime_spawn_opts *o, struct runtime_proc *p);
/* The largest runc state.json read (it holds the container's config). */
#define RUNC_STATE_MAX (16u << 20)
/* The container's init pid from <root>/<id>/state.json ("init_process_pid"), which runc
 * writes before `run -d` or `create` returns. 0 or -errno (-EINVAL: no positive pid). */
int runtime_state_init_pid(const char *root, const char *id, pid_t *pid);
/* A non-blocking listening socket at path (which must not exist). fd or -errno. */
int console_listen(const char *path);
/* Accept runc's connection and take the pty master from it. 0 or -errno. */
int console_receive(int listen_fd, int *pty_master);
