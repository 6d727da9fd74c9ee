/* Container stdio to log messages: line splitting per Docker's copier. */
#include "streams.h"

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

static void emit(struct stdio_stream *s, const char *data, size_t len, bool complete,
		 const struct timespec *now, stdio_sink_fn sink, void *ctx)
{
	const struct timespec *ts = s->in_partial ? &s->first_ts : now;
	sink(ctx, s->stream, data, len, ts);
	if (!complete && !s->in_partial)
		s->first_ts = *now;
	s->in_partial = !complete;
}

void stdio_feed(struct stdio_stream *s, const char *data, size_t n, const struct timespec *now,
		stdio_sink_fn sink, void *ctx)
{
	while (n > 0) {
		if (s->len == 0) {
			/* Fast path: messages straight from the read buffer, no copy. */
			size_t lim = n < JSONLOG_MAX_MSG ? n : JSONLOG_MAX_MSG;
			const char *nl = memchr(data, '\n', lim);
			if (nl != NULL) {
				size_t k = (size_t)(nl - data) + 1;
				emit(s, data, k, true, now, sink, ctx);
				data += k;
				n -= k;
				continue;
			}
			if (n >= JSONLOG_MAX_MSG) {
				size_t cut = utf8_cut(data, JSONLOG_MAX_MSG);
				emit(s, data, cut, false, now, sink, ctx);
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
			emit(s, s->buf, s->len + k, true, now, sink, ctx);
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
		emit(s, s->buf, cut, false, now, sink, ctx);
		s->len = JSONLOG_MAX_MSG - cut;
		memmove(s->buf, s->buf + cut, s->len);
	}
}

void stdio_finish(struct stdio_stream *s, stdio_sink_fn sink, void *ctx)
{
	if (s->len > 0) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		emit(s, s->buf, s->len, true, &now, sink, ctx);
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

