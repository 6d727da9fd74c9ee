/* Reading the container's stdout/stderr and cutting it into log messages. The splitter
 * is pure; stdio_fill does the read(), and stdio_feed_log's log file may write.
 *
 * Docker's copier (docs/runtime-notes.md §3.2): a message ends at '\n' (kept); a line
 * that reaches 16 KiB without one is emitted as a partial chunk; all chunks of a line
 * share the first chunk's timestamp; bytes left at EOF are emitted without '\n'.
 * Unlike Docker, a chunk is never cut inside a UTF-8 sequence: up to three bytes move
 * to the next chunk, so a split line never decodes to U+FFFD.
 *
 * Docker stamps each message as it is copied; here the clock is read once per read()
 * and every message completed by that read gets its time. Lines that arrive in one
 * read were in the pipe together, so a per-line clock could only tell them apart by
 * the nanoseconds the monitor itself spent encoding them, and a clock read per line
 * costs more than the rest of a short line's encoding. */
#pragma once

#include "jsonlog.h"
#include "logfile.h"

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
/* Split data into messages and pass each to sink; now is the time of messages that
 * start here (a later chunk of a line keeps its first chunk's time). */
void stdio_feed(struct stdio_stream *s, const char *data, size_t n, const struct timespec *now,
		stdio_sink_fn sink, void *ctx);
/* Emit what is left of an unterminated line (at EOF). */
void stdio_finish(struct stdio_stream *s, stdio_sink_fn sink, void *ctx);
/* The same two, with the messages encoded straight into lf's write buffer: one pass over
 * each line finds its end and escapes it (jsonlog_encode_line). */
void stdio_feed_log(struct stdio_stream *s, const char *data, size_t n,
		    const struct timespec *now, struct logfile *lf, struct jsonlog_clock *clk);
void stdio_finish_log(struct stdio_stream *s, struct logfile *lf, struct jsonlog_clock *clk);
/* One read() into scratch, to be fed to stdio_feed. Bytes read, 0 at EOF (eof is set),
 * or -errno. A pty reports EIO once its last slave closes; that is treated as EOF. */
ssize_t stdio_fill(struct stdio_stream *s, char *scratch, size_t size);
