/* The readiness protocol on --sync-fd: JSON lines from the monitor to its launcher.
 * Does I/O (writes to the sync fd only).
 *
 *   line 1, right after detaching:  {"monitorPid":123}
 *   line 2, once runc finished:     {"containerPid":456}
 *                               or: {"error":"...","stderr":"<runc's text>","runtimeExit":1}
 * then the fd is closed, so the launcher reads to EOF. A negative fd (no --sync-fd) makes
 * every call a no-op, apart from the diagnostic of a failure. Write errors are reported
 * on stderr and otherwise ignored: the launcher that stopped listening has its answer
 * in monitor.log. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

void sync_write(int fd, const char *line, size_t len);

/* {"<key>":<pid>}\n, e.g. key "monitorPid" or "containerPid". */
void sync_report_pid(int fd, const char *key, pid_t pid);

/* Close the fd (idempotent): the launcher sees EOF. */
void sync_close(int *fd);

/* Diagnose a failure on stderr, send the error line (with runc's text, JSON-escaped)
 * and close the fd. err is -errno or 0; runtime_exit is runc's exit code or -1/0. */
void sync_report_failure(int *fd, const char *what, int err, const char *runc_text,
			 size_t runc_text_len, int runtime_exit);
