/* Becoming a long-lived monitor: detaching from the launcher, keeping the OOM killer
 * off the monitor, and the signal set-up. Does I/O (fork, setsid, /proc, signals).
 * No signal handlers are installed, so nothing here leaves global state behind. */
#pragma once

#include <stddef.h>

/* Double-fork and setsid() (one fork when started as a session leader already): returns
 * 0 in the monitor proper (not a session leader, re-parented to init, cwd "/"), or
 * -errno. The intermediate processes _exit() here; the first one with the status of the
 * session leader. */
int detach_from_launcher(void);

/* Set our oom_score_adj to -1000; the previous value (a NUL-terminated string, empty
 * if unreadable) goes into saved so that the runtime, and thus the container, gets it
 * back. Failure to set it is diagnosed and otherwise ignored. */
void detach_protect_from_oom(char *saved, size_t size);

/* Ignore SIGPIPE, SIGHUP, SIGINT, SIGTERM and SIGQUIT, block SIGCHLD and return a
 * non-blocking signalfd for it, or -errno. */
int detach_signals(void);
