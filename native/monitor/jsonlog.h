/* Docker json-file encoding of one log message, in Kanto's field order. Pure: no I/O.
 *
 *   {"stream":"stdout","log":"text\n","time":"2024-01-02T03:04:05.123456789Z"}\n
 *
 * Escaping follows Docker's jsonlogbytes.go (docs/runtime-notes.md §3.1): \" \\ \n \r \t,
 * other control bytes and < > & as \u00XX, U+2028/U+2029 escaped, and every byte that
 * is not part of valid UTF-8 replaced by \ufffd. */
#pragma once

#include <stddef.h>
#include <time.h>

enum log_stream { STREAM_STDOUT = 0, STREAM_STDERR = 1 };

/* Longest message the monitor emits; longer lines are split (Docker's copier size). */
#define JSONLOG_MAX_MSG 16384
/* Worst case for a message of len bytes: every byte escaped to six characters, plus
 * the fixed frame. */
#define JSONLOG_ENTRY_BOUND(len) ((len) * 6 + 128)
#define JSONLOG_MAX_ENTRY JSONLOG_ENTRY_BOUND(JSONLOG_MAX_MSG)
#define JSONLOG_TIME_MAX 40

/* Caches the formatted date and second, so a busy stream formats the calendar part
 * once a second instead of once a line, and the whole last time, because the lines of
 * one read share it (streams.h). */
struct jsonlog_clock {
	time_t sec;
	size_t prefix_len;
	char prefix[24]; /* "2006-01-02T15:04:05" */
	time_t text_sec;
	long text_nsec;
	size_t text_len;
	char text[JSONLOG_TIME_MAX];
};

/* RFC3339Nano in UTC with trailing zeros of the fraction trimmed (Go's time format). */
size_t jsonlog_format_time(struct jsonlog_clock *clk, const struct timespec *ts, char *out);

/* Escape len bytes of s into out (room for 6*len bytes); returns the bytes written. */
size_t jsonlog_escape(const char *s, size_t len, char *out);

/* Encode one entry with its trailing newline into out (room for JSONLOG_ENTRY_BOUND(len));
 * returns the bytes written. */
size_t jsonlog_encode(struct jsonlog_clock *clk, enum log_stream stream, const char *data,
		      size_t len, const struct timespec *ts, char *out);

/* Encode the message at the start of data if it ends within len bytes: its bytes up to
 * and including the first '\n', found in the same pass that escapes them. Returns the
 * entry's length and sets *taken to the message's, or returns 0 if there is no '\n'
 * within len (out then holds scraps). out has room for JSONLOG_ENTRY_BOUND(len);
 * time_text (time_len bytes, from jsonlog_format_time) must be JSONLOG_TIME_MAX bytes
 * readable. */
size_t jsonlog_encode_line(enum log_stream stream, const char *data, size_t len,
			   const char *time_text, size_t time_len, char *out, size_t *taken);
