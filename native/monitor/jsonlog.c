/* Docker-compatible json-file line encoding. Pure: no I/O. */
#include "jsonlog.h"

#include <stdbool.h>
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

/* Escape s[*pos..len) to o and return the new end of the output. With stop_at_newline,
 * stop right after the first '\n' (escaped) and set *newline; this lets the splitter
 * find a line's end in the same pass that escapes it, since '\n' is one of the bytes
 * the block test stops at anyway.
 *
 * Each block of sixteen bytes is stored to o before it is tested, so plain text costs
 * one load and one store per block and no separate copy. The store may run up to
 * fifteen bytes past what is kept; that stays inside the 6*len bytes the caller
 * provides because it happens only while sixteen or more input bytes remain. */
static inline __attribute__((always_inline)) char *
escape_core(const unsigned char *s, size_t len, char *o, bool stop_at_newline, size_t *pos,
	    bool *newline)
{
	size_t i = *pos;
	for (;;) {
		while (len - i >= 16) {
			bytes16 b;
			memcpy(&b, s + i, sizeof(b));
			memcpy(o, &b, sizeof(b));
			words2 bad = (words2)needs_escape(b);
			if (bad[0] != 0) {
				size_t k = first_set_byte(bad[0]);
				i += k;
				o += k;
				goto special;
			}
			if (bad[1] != 0) {
				size_t k = 8 + first_set_byte(bad[1]);
				i += k;
				o += k;
				goto special;
			}
			i += 16;
			o += 16;
		}
		while (i < len && plain[s[i]])
			*o++ = (char)s[i++];
		if (i == len)
			break;
	special:;
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
				if (stop_at_newline) {
					*pos = i + 1;
					*newline = true;
					return o;
				}
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
	*pos = i;
	return o;
}

size_t jsonlog_escape(const char *src, size_t len, char *out)
{
	size_t pos = 0;
	bool newline = false;
	char *o = escape_core((const unsigned char *)src, len, out, false, &pos, &newline);
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

struct civil {
	long long year;
	unsigned month, day, hour, minute, second;
};

/* UTC calendar fields of a Unix time, by arithmetic. gmtime_r would do, but glibc's
 * first call reads /etc/localtime (and allocates), which the monitor has no use for.
 *
 * Days are counted in 400-year eras (146097 days each) of years that start on 1 March,
 * so the leap day is the last day of a year and month lengths follow a fixed pattern;
 * day 0 of the era count is 1 March of year 0, 719468 days before 1970-01-01. */
static struct civil civil_from_unix(long long t)
{
	long long days = t / 86400, rem = t % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	struct civil c = {.hour = (unsigned)(rem / 3600), .minute = (unsigned)(rem / 60 % 60),
			  .second = (unsigned)(rem % 60)};
	long long z = days + 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097;                                    /* 0..146096 */
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              /* 0..365 */
	long long mp = (5 * doy + 2) / 153;           /* month from March: 0..11 */
	c.day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	c.month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	c.year = yoe + era * 400 + (c.month <= 2);
	return c;
}

size_t jsonlog_format_time(struct jsonlog_clock *clk, const struct timespec *ts, char *out)
{
	if (clk->text_len != 0 && clk->text_sec == ts->tv_sec && clk->text_nsec == ts->tv_nsec) {
		memcpy(out, clk->text, clk->text_len);
		return clk->text_len;
	}
	if (clk->prefix_len == 0 || clk->sec != ts->tv_sec) {
		struct civil c = civil_from_unix(ts->tv_sec);
		char *p = clk->prefix;
		p += put_digits(p, (unsigned)(c.year % 10000), 4);
		*p++ = '-';
		p += put_digits(p, c.month, 2);
		*p++ = '-';
		p += put_digits(p, c.day, 2);
		*p++ = 'T';
		p += put_digits(p, c.hour, 2);
		*p++ = ':';
		p += put_digits(p, c.minute, 2);
		*p++ = ':';
		p += put_digits(p, c.second, 2);
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

static const char head_out[] = "{\"stream\":\"stdout\",\"log\":\"";
static const char head_err[] = "{\"stream\":\"stderr\",\"log\":\"";
static const char mid[] = "\",\"time\":\"";

static inline char *put_head(char *o, enum log_stream stream)
{
	memcpy(o, stream == STREAM_STDERR ? head_err : head_out, sizeof(head_out) - 1);
	return o + sizeof(head_out) - 1;
}

/* The time text is copied as a whole JSONLOG_TIME_MAX block (a fixed-size copy is a few
 * stores; the entry bound leaves room), then the output is cut back to its length. */
static inline char *put_tail(char *o, const char *time_text, size_t time_len)
{
	memcpy(o, mid, sizeof(mid) - 1);
	o += sizeof(mid) - 1;
	memcpy(o, time_text, JSONLOG_TIME_MAX);
	o += time_len;
	*o++ = '"';
	*o++ = '}';
	*o++ = '\n';
	return o;
}

size_t jsonlog_encode(struct jsonlog_clock *clk, enum log_stream stream, const char *data,
		      size_t len, const struct timespec *ts, char *out)
{
	char time_text[JSONLOG_TIME_MAX];
	size_t time_len = jsonlog_format_time(clk, ts, time_text);
	char *o = put_head(out, stream);
	o += jsonlog_escape(data, len, o);
	return (size_t)(put_tail(o, time_text, time_len) - out);
}

size_t jsonlog_encode_line(enum log_stream stream, const char *data, size_t len,
			   const char *time_text, size_t time_len, char *out, size_t *taken)
{
	size_t pos = 0;
	bool newline = false;
	char *o = put_head(out, stream);
	o = escape_core((const unsigned char *)data, len, o, true, &pos, &newline);
	if (!newline)
		return 0;
	*taken = pos;
	return (size_t)(put_tail(o, time_text, time_len) - out);
}
