/* Buffered json-file appends with rename-based rotation. Does I/O. */
#include "logfile.h"

#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int open_current(struct logfile *lf, int extra_flags)
{
	_cleanup_close_ int fd = RETRY_EINTR(
		open(lf->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | extra_flags, 0640));
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	lf->fd = util_take_fd(&fd);
	lf->size = st.st_size;
	return 0;
}

int logfile_open(struct logfile *lf, const char *path, long long max_size, int max_files,
		 unsigned delay_ms)
{
	memset(lf, 0, sizeof(*lf));
	lf->fd = -1;
	lf->rotate_at = max_size > 0 ? max_size : LLONG_MAX;
	lf->max_files = max_files < 1 ? 1 : max_files;
	lf->delay_ms = delay_ms;
	lf->path = strdup(path);
	lf->buf = malloc(LOGFILE_BUF);
	if (lf->path == NULL || lf->buf == NULL)
		return -ENOMEM;
	/* Appending keeps the log of earlier runs of the same container, as Docker does. */
	return open_current(lf, 0);
}

static void slow_down(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void logfile_flush(struct logfile *lf)
{
	if (lf->buf_len == 0)
		return;
	if (lf->delay_ms)
		slow_down(lf->delay_ms);
	int rc = lf->fd < 0 ? lf->last_error : util_write_all(lf->fd, lf->buf, lf->buf_len);
	if (rc < 0) {
		/* The container must never stall or die because its log cannot be written:
		 * count what is lost, report it once per error kind, and carry on. */
		if (rc != lf->last_error)
			util_warn(rc, "writing %s", lf->path);
		lf->last_error = rc;
		lf->lost += lf->buf_entries;
	}
	lf->buf_len = 0;
	lf->buf_entries = 0;
}

static void rotate(struct logfile *lf)
{
	char from[PATH_MAX], to[PATH_MAX];
	logfile_flush(lf);
	util_closep(&lf->fd);
	if (lf->max_files < 2) {
		if (unlink(lf->path) < 0 && errno != ENOENT)
			util_warn(-errno, "removing %s", lf->path);
	} else {
		for (int i = lf->max_files - 1; i >= 2; i--) {
			snprintf(from, sizeof(from), "%s.%d", lf->path, i - 1);
			snprintf(to, sizeof(to), "%s.%d", lf->path, i);
			if (rename(from, to) < 0 && errno != ENOENT)
				util_warn(-errno, "renaming %s", from);
		}
		snprintf(to, sizeof(to), "%s.1", lf->path);
		if (rename(lf->path, to) < 0 && errno != ENOENT)
			util_warn(-errno, "renaming %s", lf->path);
	}
	int rc = open_current(lf, O_TRUNC);
	if (rc < 0) {
		util_warn(rc, "reopening %s", lf->path);
		lf->last_error = rc;
	}
	lf->size = 0;
}

char *logfile_reserve_slow(struct logfile *lf)
{
	if (lf->size >= lf->rotate_at)
		rotate(lf);
	if (lf->buf_len >= LOGFILE_FLUSH_AT)
		logfile_flush(lf);
	return lf->buf + lf->buf_len;
}

void logfile_append_message(struct logfile *lf, struct jsonlog_clock *clk,
			    enum log_stream stream, const char *data, size_t len,
			    const struct timespec *ts)
{
	char *dst = logfile_reserve(lf);
	logfile_commit(lf, jsonlog_encode(clk, stream, data, len, ts, dst));
}

int logfile_close(struct logfile *lf)
{
	int rc = 0;
	logfile_flush(lf);
	if (lf->fd >= 0) {
		if (RETRY_EINTR(fsync(lf->fd)) < 0)
			rc = -errno;
		util_closep(&lf->fd);
	}
	free(lf->buf);
	free(lf->path);
	lf->buf = NULL;
	lf->path = NULL;
	return rc;
}
