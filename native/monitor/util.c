/* EINTR-safe I/O helpers and atomic file replacement for the monitor. Does I/O. */
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = RETRY_EINTR(write(fd, p, len));
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t util_read(int fd, void *buf, size_t len)
{
	ssize_t n = RETRY_EINTR(read(fd, buf, len));
	return n < 0 ? -errno : n;
}

/* Read until EOF or `cap` bytes into buf, then NUL-terminate (buf holds cap + 1). */
static ssize_t read_up_to(int fd, char *buf, size_t cap)
{
	size_t used = 0;
	while (used < cap) {
		ssize_t n = util_read(fd, buf + used, cap - used);
		if (n < 0)
			return n;
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	return (ssize_t)used;
}

ssize_t util_read_file(const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = RETRY_EINTR(open(path, O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -errno;
	return read_up_to(fd, buf, size - 1);
}

ssize_t util_read_alloc(const char *path, size_t max, char **out)
{
	_cleanup_close_ int fd = RETRY_EINTR(open(path, O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || (unsigned long long)st.st_size > max)
		return -EFBIG;
	char *buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return -ENOMEM;
	ssize_t used = read_up_to(fd, buf, (size_t)st.st_size);
	if (used < 0) {
		free(buf);
		return used;
	}
	*out = buf;
	return used;
}

int util_replace_file(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	{
		_cleanup_close_ int fd =
			RETRY_EINTR(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
		if (fd < 0)
			return -errno;
		int rc = util_write_all(fd, data, len);
		if (rc < 0) {
			unlink(tmp);
			return rc;
		}
	}
	if (rename(tmp, path) < 0) {
		int err = -errno;
		unlink(tmp);
		return err;
	}
	return 0;
}

int util_write_file_atomic(const char *dir, const char *name, const void *data, size_t len)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	{
		/* No O_TRUNC: writing over a temp file reserved earlier (util_reserve_file)
		 * needs no new blocks, so this works on a full disk; the truncate after it
		 * only frees. */
		_cleanup_close_ int fd = RETRY_EINTR(open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
		if (fd < 0)
			return -errno;
		int rc = util_write_all(fd, data, len);
		if (rc < 0)
			return rc;
		if (RETRY_EINTR(ftruncate(fd, (off_t)len)) < 0)
			return -errno;
		if (RETRY_EINTR(fsync(fd)) < 0)
			return -errno;
	}
	if (rename(tmp, dst) < 0) {
		int err = -errno;
		unlink(tmp);
		return err;
	}
	_cleanup_close_ int dfd = RETRY_EINTR(open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (dfd < 0)
		return -errno;
	if (RETRY_EINTR(fsync(dfd)) < 0)
		return -errno;
	return 0;
}

int util_reserve_file(const char *dir, const char *name, size_t len)
{
	char tmp[PATH_MAX], fill[512];
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		RETRY_EINTR(open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
	if (fd < 0)
		return -errno;
	memset(fill, ' ', sizeof(fill));
	for (size_t done = 0; done < len; done += sizeof(fill)) {
		size_t n = len - done < sizeof(fill) ? len - done : sizeof(fill);
		int rc = util_write_all(fd, fill, n);
		if (rc < 0)
			return rc;
	}
	return util_take_fd(&fd);
}

int util_sync_close(int fd)
{
	_cleanup_close_ int owned = fd;
	return RETRY_EINTR(fsync(owned)) < 0 ? -errno : 0;
}

int util_set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int util_set_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

int util_parse_ll(const char *s, long long *out)
{
	if (s == NULL || *s == '\0')
		return -EINVAL;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0)
		return -errno;
	if (*end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

void util_warn(int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = strnlen(msg, sizeof(msg));
	char line[700];
	int m = err ? snprintf(line, sizeof(line), "ocirt-monitor: %.*s: %s\n", (int)len, msg,
			       strerror(err < 0 ? -err : err))
		    : snprintf(line, sizeof(line), "ocirt-monitor: %.*s\n", (int)len, msg);
	if (m > 0)
		(void)util_write_all(STDERR_FILENO, line, strnlen(line, sizeof(line)));
}
