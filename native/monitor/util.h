/* Small helpers shared by the monitor: cleanup attributes, EINTR-safe I/O, atomic files.
 *
 * Every function returns 0 (or a byte count) on success and -errno on failure, so the
 * callers can propagate errors without consulting errno afterwards. */
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* Retry a syscall that failed with EINTR; conmon does the same around every call
 * because a stopped-and-continued monitor (SIGSTOP/SIGCONT, ptrace) sees EINTR even
 * without installed handlers. */
#define RETRY_EINTR(expr)                                                                          \
	({                                                                                         \
		long _rc;                                                                          \
		do                                                                                 \
			_rc = (long)(expr);                                                        \
		while (_rc == -1 && errno == EINTR);                                               \
		_rc;                                                                               \
	})

static inline void util_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
		*fd = -1;
	}
}

static inline void util_freep(void *p)
{
	free(*(void **)p);
}

/* Hand an fd out of a _cleanup_close_ variable: returns it and leaves -1 behind. */
static inline int util_take_fd(int *fd)
{
	int taken = *fd;
	*fd = -1;
	return taken;
}

#define _cleanup_close_ __attribute__((cleanup(util_closep)))
#define _cleanup_free_ __attribute__((cleanup(util_freep)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Write the whole buffer (short writes and EINTR handled). 0 or -errno. */
int util_write_all(int fd, const void *buf, size_t len);

/* One read(), EINTR retried. Byte count, 0 at EOF, or -errno (-EAGAIN included). */
ssize_t util_read(int fd, void *buf, size_t len);

/* Read a small file into buf (NUL-terminated, truncated to size-1). Length or -errno. */
ssize_t util_read_file(const char *path, char *buf, size_t size);

/* Read a whole file of at most `max` bytes into a new NUL-terminated buffer (*out, for
 * free()). Length, or -errno (-EFBIG when larger or empty). */
ssize_t util_read_alloc(const char *path, size_t max, char **out);

/* Replace path atomically (path.tmp, then rename) with no fsync: for what a crash of
 * the monitor must not leave torn, and a power cut makes stale anyway. 0 or -errno. */
int util_replace_file(const char *path, const void *data, size_t len);

/* Replace dir/name atomically: write dir/.name.tmp, fsync, rename, fsync dir. */
int util_write_file_atomic(const char *dir, const char *name, const void *data, size_t len);
/* Make the temp file util_write_file_atomic(dir, name) writes, `len` bytes long, so that
 * a later write of up to `len` bytes needs no free space (a full disk). The space is
 * taken by the write() itself (filesystems allocate blocks, or with delayed allocation
 * reserve them, before write() returns; ENOSPC comes from there), so this is cheap; the
 * file is not synced: the open fd is returned for util_sync_close, which the caller
 * can do once nothing waits for it. fd or -errno. */
int util_reserve_file(const char *dir, const char *name, size_t len);
/* fsync fd and close it. 0 or -errno. */
int util_sync_close(int fd);

int util_set_nonblock(int fd);
int util_set_cloexec(int fd);

/* Parse a decimal integer; the whole string must be consumed. 0 or -EINVAL/-ERANGE. */
int util_parse_ll(const char *s, long long *out);

/* A diagnostic on the monitor's own stderr (the launcher points it at monitor.log). */
void util_warn(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
