/* Container stdio to log messages: line splitting per Docker's copier. */
#include "streams.h"

#include "logfile.h"
#include "util.h"

#include <string.h>

void stdio_init(struct stdio_stream *s, int fd, enum log_stream stream)
{
	s->fd = fd;
	s->stream = stream;
	s->eof = false;
	s->in_partial = false;
	s->len = 0;
}

/* Where to cut a full chunk of n bytes so no UTF-8 sequence is split: n, or n minus
 * the 1..3 bytes of an incomplete sequence at its end. */
static size_t utf8_cut(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	for (size_t back = 1; back <= 3 && back < n; back++) {
		unsigned char c = s[n - back];
		if ((c & 0xC0) == 0x80)
			continue; /* continuation byte: keep looking for the lead */
		size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		return need > back ? n - back : n;
	}
	return n;
}

/* The splitter, once for each consumer: `line` takes a complete message at the start of
 * data if one ends within lim bytes (returning its length, else 0), `emit` takes any
 * other message. Both are known at each call site, so they are inlined into it and the
 * hot path pays no indirect call per line. */
typedef size_t (*line_fn)(void *ctx, struct stdio_stream *s, const char *data, size_t lim,
			  const struct timespec *now);
typedef void (*emit_fn)(void *ctx, struct stdio_stream *s, const char *data, size_t len,
			const struct timespec *ts);

/* Which time a message starting now gets, and the partial-line bookkeeping after it. */
static inline const struct timespec *message_time(struct stdio_stream *s,
						  const struct timespec *now)
{
	return s->in_partial ? &s->first_ts : now;
}

static inline void after_message(struct stdio_stream *s, bool complete, const struct timespec *now)
{
	if (!complete && !s->in_partial)
		s->first_ts = *now;
	s->in_partial = !complete;
}

static inline __attribute__((always_inline)) void
feed_core(struct stdio_stream *s, const char *data, size_t n, const struct timespec *now,
	  line_fn line, emit_fn emit, void *ctx)
{
	while (n > 0) {
		if (s->len == 0) {
			/* Fast path: messages straight from the read buffer, no copy. */
			size_t lim = n < JSONLOG_MAX_MSG ? n : JSONLOG_MAX_MSG;
			size_t k = line(ctx, s, data, lim, now);
			if (k != 0) {
				data += k;
				n -= k;
				continue;
			}
			if (n >= JSONLOG_MAX_MSG) {
				size_t cut = utf8_cut(data, JSONLOG_MAX_MSG);
				emit(ctx, s, data, cut, message_time(s, now));
				after_message(s, false, now);
				data += cut;
				n -= cut;
				continue;
			}
			memcpy(s->buf, data, n);
			s->len = n;
			return;
		}
		size_t space = JSONLOG_MAX_MSG - s->len;
		size_t lim = n < space ? n : space;
		const char *nl = memchr(data, '\n', lim);
		if (nl != NULL) {
			size_t k = (size_t)(nl - data) + 1;
			memcpy(s->buf + s->len, data, k);
			emit(ctx, s, s->buf, s->len + k, message_time(s, now));
			after_message(s, true, now);
			s->len = 0;
			data += k;
			n -= k;
			continue;
		}
		if (n < space) {
			memcpy(s->buf + s->len, data, n);
			s->len += n;
			return;
		}
		memcpy(s->buf + s->len, data, space);
		data += space;
		n -= space;
		size_t cut = utf8_cut(s->buf, JSONLOG_MAX_MSG);
		emit(ctx, s, s->buf, cut, message_time(s, now));
		after_message(s, false, now);
		s->len = JSONLOG_MAX_MSG - cut;
		memmove(s->buf, s->buf + cut, s->len);
	}
}

/* ---- any sink ---- */

struct sink_ctx {
	stdio_sink_fn sink;
	void *ctx;
};

static inline void sink_emit(void *ctx, struct stdio_stream *s, const char *data, size_t len,
			     const struct timespec *ts)
{
	struct sink_ctx *c = ctx;
	c->sink(c->ctx, s->stream, data, len, ts);
}

static inline size_t sink_line(void *ctx, struct stdio_stream *s, const char *data, size_t lim,
			       const struct timespec *now)
{
	const char *nl = memchr(data, '\n', lim);
	if (nl == NULL)
		return 0;
	size_t k = (size_t)(nl - data) + 1;
	sink_emit(ctx, s, data, k, message_time(s, now));
	after_message(s, true, now);
	return k;
}

void stdio_feed(struct stdio_stream *s, const char *data, size_t n, const struct timespec *now,
		stdio_sink_fn sink, void *ctx)
{
	struct sink_ctx c = {.sink = sink, .ctx = ctx};
	feed_core(s, data, n, now, sink_line, sink_emit, &c);
}

/* ---- straight into the log file ---- */

struct log_ctx {
	struct logfile *lf;
	struct jsonlog_clock *clk;
	size_t time_len;
	char time_text[JSONLOG_TIME_MAX]; /* of `now`: every line of one read shares it */
};

static inline void log_emit(void *ctx, struct stdio_stream *s, const char *data, size_t len,
			    const struct timespec *ts)
{
	struct log_ctx *c = ctx;
	logfile_append_message(c->lf, c->clk, s->stream, data, len, ts);
}

static inline size_t log_line(void *ctx, struct stdio_stream *s, const char *data, size_t lim,
			      const struct timespec *now)
{
	struct log_ctx *c = ctx;
	const char *time_text = c->time_text;
	size_t time_len = c->time_len;
	char first[JSONLOG_TIME_MAX];
	if (__builtin_expect(s->in_partial, 0)) {
		time_len = jsonlog_format_time(c->clk, &s->first_ts, first);
		time_text = first;
	}
	char *dst = logfile_reserve(c->lf);
	size_t taken;
	size_t len = jsonlog_encode_line(s->stream, data, lim, time_text, time_len, dst, &taken);
	if (len == 0)
		return 0; /* nothing committed: the scraps in the buffer are overwritten */
	logfile_commit(c->lf, len);
	after_message(s, true, now);
	return taken;
}

void stdio_feed_log(struct stdio_stream *s, const char *data, size_t n,
		    const struct timespec *now, struct logfile *lf, struct jsonlog_clock *clk)
{
	struct log_ctx c = {.lf = lf, .clk = clk};
	c.time_len = jsonlog_format_time(clk, now, c.time_text);
	feed_core(s, data, n, now, log_line, log_emit, &c);
}

void stdio_finish_log(struct stdio_stream *s, struct logfile *lf, struct jsonlog_clock *clk)
{
	if (s->len > 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		logfile_append_message(lf, clk, s->stream, s->buf, s->len, message_time(s, &now));
	}
	s->len = 0;
	s->in_partial = false;
}

void stdio_finish(struct stdio_stream *s, stdio_sink_fn sink, void *ctx)
{
	if (s->len > 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		sink(ctx, s->stream, s->buf, s->len, message_time(s, &now));
	}
	s->len = 0;
	s->in_partial = false;
}

ssize_t stdio_fill(struct stdio_stream *s, char *scratch, size_t size)
{
	ssize_t n = util_read(s->fd, scratch, size);
	if (n == -EIO)
		n = 0;
	if (n == 0)
		s->eof = true;
	return n;
}

