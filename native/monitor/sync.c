/* The readiness protocol: see sync.h. */
#include "sync.h"
#include "jsonlog.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void sync_write(int fd, const char *line, size_t len)
{
	if (fd < 0)
		return;
	int rc = util_write_all(fd, line, len);
	if (rc < 0)
		util_warn(rc, "writing to the sync fd");
}

void sync_report_pid(int fd, const char *key, pid_t pid)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "{\"%s\":%d}\n", key, (int)pid);
	if (n > 0 && (size_t)n < sizeof(line))
		sync_write(fd, line, (size_t)n);
}

void sync_close(int *fd)
{
	util_closep(fd);
}

void sync_report_failure(int *fd, const char *what, int err, const char *runc_text,
			 size_t runc_text_len, int runtime_exit)
{
	char msg[600];
	snprintf(msg, sizeof(msg), "%s%s%s", what, err ? ": " : "", err ? strerror(-err) : "");
	util_warn(0, "%s", msg);
	/* Why the unchecked sprintf calls below cannot overrun: jsonlog_escape writes at most
	 * 6 bytes per input byte (a control byte becomes \u00XX), so the two escaped strings
	 * take at most (strlen(msg) + runc_text_len) * 6. The fixed text around them is
	 * {"error":" (10) + ","stderr":" (12) + ","runtimeExit": (16) + an int (at most 11,
	 * "-2147483648") + }\n (2) + the NUL sprintf adds (1) = 52 bytes, within the 128. */
	size_t cap = (strlen(msg) + runc_text_len) * 6 + 128;
	_cleanup_free_ char *line = malloc(cap);
	if (line == NULL)
		return;
	char *o = line;
	o += sprintf(o, "{\"error\":\"");
	o += jsonlog_escape(msg, strlen(msg), o);
	o += sprintf(o, "\",\"stderr\":\"");
	o += jsonlog_escape(runc_text, runc_text_len, o);
	o += sprintf(o, "\",\"runtimeExit\":%d}\n", runtime_exit);
	sync_write(*fd, line, (size_t)(o - line));
	sync_close(fd);
}
