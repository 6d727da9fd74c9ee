/* The json-file log on disk: buffered appends and Docker-style rotation. Does I/O.
 *
 * Rotation happens before an append when the file already holds >= max_size bytes, so
 * a file may exceed max_size by one entry (Docker's loggerutils/logfile.go). Old files
 * shift by rename (json.log -> json.log.1 -> ...), never by truncation, because a
 * reader may still hold the old inode. With max_files == 1 the file is replaced. */
#pragma once

#include "jsonlog.h"

#include <stddef.h>
#include <stdint.h>

/* The write buffer is flushed once it holds LOGFILE_FLUSH_AT bytes, and has room for one
 * largest entry beyond that, so an entry is always encoded in place. Only the pages the
 * entries reach are ever touched: short lines keep it at about LOGFILE_FLUSH_AT. */
#define LOGFILE_FLUSH_AT 32768
#define LOGFILE_BUF (LOGFILE_FLUSH_AT + JSONLOG_MAX_ENTRY)

struct logfile {
	int fd;
	char *path;
	long long rotate_at; /* max_size, or LLONG_MAX when it is <= 0 (never rotate) */
	int max_files;
	long long size;     /* bytes in the file, buffered bytes included */
	char *buf;
	size_t buf_len;
	uint64_t buf_entries;
	uint64_t lost;      /* entries lost to write errors */
	unsigned delay_ms;  /* test-only: sleep before each write, to simulate a slow disk */
	int last_error;
};

int logfile_open(struct logfile *lf, const char *path, long long max_size, int max_files,
		 unsigned delay_ms);
char *logfile_reserve_slow(struct logfile *lf);

/* Room for one entry of any size (up to JSONLOG_MAX_ENTRY) straight in the write buffer,
 * so the encoder writes there and nothing is copied; rotates or flushes first if due. */
static inline char *logfile_reserve(struct logfile *lf)
{
	if (__builtin_expect(lf->buf_len >= LOGFILE_FLUSH_AT || lf->size >= lf->rotate_at, 0))
		return logfile_reserve_slow(lf);
	return lf->buf + lf->buf_len;
}

/* Account the len bytes written at logfile_reserve's pointer as one entry. */
static inline void logfile_commit(struct logfile *lf, size_t len)
{
	lf->buf_len += len;
	lf->buf_entries++;
	lf->size += (long long)len;
}

/* Encode one message (len <= JSONLOG_MAX_MSG) and append it. */
void logfile_append_message(struct logfile *lf, struct jsonlog_clock *clk,
			    enum log_stream stream, const char *data, size_t len,
			    const struct timespec *ts);
/* Write the buffered entries to the file. */
void logfile_flush(struct logfile *lf);
/* Flush, fsync and close. 0 or -errno of the fsync. */
int logfile_close(struct logfile *lf);
