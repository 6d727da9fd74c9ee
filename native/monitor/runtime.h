/* Running `<runtime> create` with the container's stdio wired to the monitor, and
 * receiving the pty master over the console socket. Does I/O.
 *
 * Pass-through (no tty): runc's fds 0/1/2 become the container's stdio (runc
 * docs/terminals.md), so the monitor hands runc the worker ends of pipes. It never
 * waits for EOF on them (the container holds them; runc#1721): it waits for runc's exit
 * status. Between `create` and `start` no container code runs, so whatever arrives on
 * the stderr pipe before `create` exits is runc's own text; the monitor reports it on
 * failure (conmon does the same).
 * Tty: runc connects to a SOCK_STREAM pathname socket and sends the pty master with
 * SCM_RIGHTS; runc's own stdout/stderr then go to a separate pipe. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct runtime_spawn_opts {
	const char *runtime;
	const char *root;
	const char *bundle;
	const char *pid_file;
	const char *id;
	const char *console_socket; /* NULL unless tty */
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
/* A non-blocking listening socket at path (which must not exist). fd or -errno. */
int console_listen(const char *path);
/* Accept runc's connection and take the pty master from it. 0 or -errno. */
int console_receive(int listen_fd, int *pty_master);
