/* Docker-compatible json-file line encoding. Pure: no I/O. */
#include "jsonlog.h"

#include <stdint.h>
#include <string.h>

static const char hexdigits[] = "0123456789abcdef";

/* Printable ASCII that JSON and Docker's HTML-safe escaping leave alone. */
static const unsigned char plain[256] = {
	[' '] = 1, ['!'] = 1, ['#' ... '%'] = 1, ['\'' ... ';'] = 1, ['='] = 1,
	['?' ... '['] = 1, [']' ... 0x7F] = 1,
};

/* Sixteen bytes at a time. GCC lowers these generic vectors to SSE2 on x86-64 and to
 * NEON on arm/aarch64, and to plain integer code elsewhere; no intrinsics needed. */
typedef unsigned char bytes16 __attribute__((vector_size(16)));
typedef unsigned long long words2 __attribute__((vector_size(16)));

/* Nonzero bytes where b needs escaping: the complement of `plain` above. */
static inline bytes16 needs_escape(bytes16 b)
{
	bytes16 bad = (bytes16)(b < 0x20) | (bytes16)(b >= 0x80);
	bad |= (bytes16)(b == '"') | (bytes16)(b == '\\') | (bytes16)(b == '<');
	bad |= (bytes16)(b == '>') | (bytes16)(b == '&');
	return bad;
}

/* Index of the first (lowest-addressed) nonzero byte of a nonzero word. */
static inline size_t first_set_byte(unsigned long long w)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (size_t)__builtin_ctzll(w) / 8;
#else
	return (size_t)__builtin_clzll(w) / 8;
#endif
}

/* End of the run of plain bytes starting at i (at most len). The vector loop looks at
 * whole blocks only, so it never reads past len. */
static size_t plain_run(const unsigned char *s, size_t i, size_t len)
{
	while (len - i >= 16) {
		bytes16 b;
		memcpy(&b, s + i, sizeof(b));
		words2 bad = (words2)needs_escape(b);
		if (bad[0] != 0)
			return i + first_set_byte(bad[0]);
		if (bad[1] != 0)
			return i + 8 + first_set_byte(bad[1]);
		i += 16;
	}
	while (i < len && plain[s[i]])
		i++;
	return i;
}

/* Length of the valid UTF-8 sequence at s (2..4), or 0 if the bytes there are not one.
 * The ranges are those of RFC 3629 / Go's utf8.DecodeRune: no overlongs, no
 * surrogates, nothing above U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

size_t jsonlog_escape(const char *src, size_t len, char *out)
{
	const unsigned char *s = (const unsigned char *)src;
	char *o = out;
	size_t i = 0;
	while (i < len) {
		/* Copy runs of bytes that need no escaping in one go: most log text. */
		size_t run = plain_run(s, i, len);
		if (run > i) {
			memcpy(o, s + i, run - i);
			o += run - i;
			i = run;
			if (i == len)
				break;
		}
		unsigned char c = s[i];
		if (c < 0x80) {
			*o++ = '\\';
			switch (c) {
			case '"':
			case '\\':
				*o++ = (char)c;
				break;
			case '\n':
				*o++ = 'n';
				break;
			case '\r':
				*o++ = 'r';
				break;
			case '\t':
				*o++ = 't';
				break;
			default:
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = hexdigits[c >> 4];
				*o++ = hexdigits[c & 0xF];
			}
			i++;
			continue;
		}
		size_t n = utf8_seq_len(s + i, len - i);
		if (n == 0) {
			memcpy(o, "\\ufffd", 6);
			o += 6;
			i++;
			continue;
		}
		/* U+2028/U+2029 (E2 80 A8/A9) break JavaScript parsers; Docker escapes them. */
		if (n == 3 && c == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] & 0xFE) == 0xA8) {
			memcpy(o, s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
			o += 6;
		} else {
			memcpy(o, s + i, n);
			o += n;
		}
		i += n;
	}
	return (size_t)(o - out);
}

static size_t put_digits(char *o, unsigned v, int width)
{
	for (int k = width - 1; k >= 0; k--) {
		o[k] = (char)('0' + v % 10);
		v /= 10;
	}
	return (size_t)width;
}

size_t jsonlog_format_time(struct jsonlog_clock *clk, const struct timespec *ts, char *out)
{
	if (clk->text_len != 0 && clk->text_sec == ts->tv_sec && clk->text_nsec == ts->tv_nsec) {
		memcpy(out, clk->text, clk->text_len);
		return clk->text_len;
	}
	if (clk->prefix_len == 0 || clk->sec != ts->tv_sec) {
		struct tm tm;
		time_t sec = ts->tv_sec;
		if (gmtime_r(&sec, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		char *p = clk->prefix;
		p += put_digits(p, (unsigned)(tm.tm_year + 1900) % 10000, 4);
		*p++ = '-';
		p += put_digits(p, (unsigned)tm.tm_mon + 1, 2);
		*p++ = '-';
		p += put_digits(p, (unsigned)tm.tm_mday, 2);
		*p++ = 'T';
		p += put_digits(p, (unsigned)tm.tm_hour, 2);
		*p++ = ':';
		p += put_digits(p, (unsigned)tm.tm_min, 2);
		*p++ = ':';
		p += put_digits(p, (unsigned)tm.tm_sec, 2);
		clk->prefix_len = (size_t)(p - clk->prefix);
		clk->sec = ts->tv_sec;
	}
	char *o = out;
	memcpy(o, clk->prefix, clk->prefix_len);
	o += clk->prefix_len;
	unsigned nsec = (unsigned)ts->tv_nsec;
	if (nsec != 0) {
		char frac[9];
		put_digits(frac, nsec, 9);
		int keep = 9;
		while (keep > 0 && frac[keep - 1] == '0')
			keep--;
		*o++ = '.';
		memcpy(o, frac, (size_t)keep);
		o += keep;
	}
	*o++ = 'Z';
	size_t n = (size_t)(o - out);
	memcpy(clk->text, out, n);
	clk->text_len = n;
	clk->text_sec = ts->tv_sec;
	clk->text_nsec = ts->tv_nsec;
	return n;
}

size_t jsonlog_encode(struct jsonlog_clock *clk, enum log_stream stream, const char *data,
		      size_t len, const struct timespec *ts, char *out)
{
	static const char head_out[] = "{\"stream\":\"stdout\",\"log\":\"";
	static const char head_err[] = "{\"stream\":\"stderr\",\"log\":\"";
	static const char mid[] = "\",\"time\":\"";
	char *o = out;
	memcpy(o, stream == STREAM_STDERR ? head_err : head_out, sizeof(head_out) - 1);
	o += sizeof(head_out) - 1;
	o += jsonlog_escape(data, len, o);
	memcpy(o, mid, sizeof(mid) - 1);
	o += sizeof(mid) - 1;
	o += jsonlog_format_time(clk, ts, o);
	*o++ = '"';
	*o++ = '}';
	*o++ = '\n';
	return (size_t)(o - out);
}
