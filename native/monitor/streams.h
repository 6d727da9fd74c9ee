/* Reading the container's stdout/stderr and cutting it into log messages. The splitter
 * is pure; stdio_read does the read().
 *
 * Docker's copier (runtime-net-logs.md §3.2): a message ends at '\n' (kept); a line
 * that reaches 16 KiB without one is emitted as a partial chunk; all chunks of a line
 * share the first chunk's timestamp; bytes left at EOF are emitted without '\n'.
 * Unlike Docker, a chunk is never cut inside a UTF-8 sequence: up to three bytes move
 * to the next chunk, so a split line never decodes to U+FFFD. */
#pragma once

#include "jsonlog.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

typedef void (*stdio_sink_fn)(void *ctx, enum log_stream stream, const char *data, size_t len,
			      const struct timespec *ts);

struct stdio_stream {
	int fd;
	enum log_stream stream;
	bool eof;
	bool in_partial;           /* a chunk of the current line was already emitted */
	struct timespec first_ts;  /* its timestamp, shared by the line's later chunks */
	size_t len;
	char buf[JSONLOG_MAX_MSG];
};

void stdio_init(struct stdio_stream *s, int fd, enum log_stream stream);
/* Split data into messages and pass each to sink. */
void stdio_feed(struct stdio_stream *s, const char *data, size_t n, stdio_sink_fn sink, void *ctx);
/* Emit what is left of an unterminated line (at EOF). */
void stdio_finish(struct stdio_stream *s, stdio_sink_fn sink, void *ctx);
/* One read() into scratch, fed to the splitter. Bytes read, 0 at EOF, or -errno. A pty
 * reports EIO once its last slave closes; that is treated as EOF. */
ssize_t stdio_read(struct stdio_stream *s, char *scratch, size_t size, stdio_sink_fn sink,
		   void *ctx);
