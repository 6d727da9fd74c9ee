/* The attach socket forwarding client bytes to the container's stdin. Does I/O. */
#include "attach.h"

#include "runtime.h"
#include "util.h"

#include <string.h>
#include <sys/socket.h>

int attach_open(struct attach *a, const char *path, int target)
{
	memset(a, 0, sizeof(*a));
	a->target = target;
	for (size_t i = 0; i < ATTACH_MAX_CLIENTS; i++)
		a->clients[i] = -1;
	a->listen_fd = console_listen(path);
	return a->listen_fd < 0 ? a->listen_fd : 0;
}

size_t attach_fill(struct attach *a, struct pollfd *pfd, size_t room)
{
	size_t n = 0;
	if (n < room)
		pfd[n++] = (struct pollfd){.fd = a->listen_fd, .events = POLLIN};
	bool idle = a->pending_len == 0;
	for (size_t i = 0; i < ATTACH_MAX_CLIENTS && n < room; i++)
		pfd[n++] = (struct pollfd){.fd = idle ? a->clients[i] : -1, .events = POLLIN};
	if (n < room)
		pfd[n++] = (struct pollfd){.fd = idle ? -1 : a->target, .events = POLLOUT};
	return n;
}

static void flush_pending(struct attach *a)
{
	while (a->pending_len > 0) {
		if (a->target < 0) {
			a->pending_len = 0;
			break;
		}
		ssize_t w = RETRY_EINTR(
			write(a->target, a->pending + a->pending_off, a->pending_len));
		if (w < 0) {
			if (errno == EAGAIN)
				return;
			/* The container closed its stdin (EPIPE) or the pty is gone (EIO):
			 * input has nowhere to go any more and is discarded. */
			a->target = -1;
			a->pending_len = 0;
			break;
		}
		a->pending_off += (size_t)w;
		a->pending_len -= (size_t)w;
	}
	a->pending_off = 0;
}

void attach_handle(struct attach *a, const struct pollfd *pfd, size_t n)
{
	if (n == 0)
		return;
	if (pfd[0].revents & POLLIN) {
		int c = RETRY_EINTR(accept4(a->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK));
		if (c >= 0) {
			size_t i = 0;
			while (i < ATTACH_MAX_CLIENTS && a->clients[i] >= 0)
				i++;
			if (i < ATTACH_MAX_CLIENTS)
				a->clients[i] = c;
			else
				util_closep(&c); /* too many writers at once: refuse this one */
		}
	}
	for (size_t i = 0; i < ATTACH_MAX_CLIENTS && i + 1 < n; i++) {
		if (a->pending_len > 0 || pfd[i + 1].fd < 0 || !pfd[i + 1].revents)
			continue;
		ssize_t r = util_read(a->clients[i], a->pending, sizeof(a->pending));
		if (r == -EAGAIN)
			continue;
		if (r <= 0) {
			util_closep(&a->clients[i]);
			continue;
		}
		a->pending_off = 0;
		a->pending_len = (size_t)r;
		flush_pending(a);
	}
	if (n > ATTACH_MAX_CLIENTS + 1 && pfd[ATTACH_MAX_CLIENTS + 1].revents)
		flush_pending(a);
}

void attach_close(struct attach *a, const char *path)
{
	for (size_t i = 0; i < ATTACH_MAX_CLIENTS; i++)
		util_closep(&a->clients[i]);
	util_closep(&a->listen_fd);
	if (path)
		unlink(path);
}
