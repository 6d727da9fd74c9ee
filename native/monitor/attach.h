/* openStdin: a unix stream socket whose received bytes go to the container's stdin.
 * Does I/O.
 *
 * Clients connect to <state-dir>/attach.sock (mode 0600) and write; their bytes are
 * written, in arrival order per client, to the stdin pipe or the pty master. Writes
 * are non-blocking with one pending buffer: while it is not empty, no client is read,
 * so a container that stops reading stdin stalls only its writers, never the
 * monitor's log draining. Client EOF does not close the container's stdin (Kanto's
 * openStdin keeps it open for the container's life). */
#pragma once

#include <poll.h>
#include <stddef.h>

#define ATTACH_MAX_CLIENTS 8

struct attach {
	int listen_fd;
	int target;
	int clients[ATTACH_MAX_CLIENTS];
	size_t pending_off;
	size_t pending_len;
	char pending[4096];
};

int attach_open(struct attach *a, const char *path, int target);
/* Append this module's pollfds; returns how many were added (at most room). */
size_t attach_fill(struct attach *a, struct pollfd *pfd, size_t room);
/* Handle the results of the n pollfds attach_fill added. */
void attach_handle(struct attach *a, const struct pollfd *pfd, size_t n);
void attach_close(struct attach *a, const char *path);
