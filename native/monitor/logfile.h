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

struct logfile {
	int fd;
	char *path;
	long long max_size; /* <= 0: never rotate */
	int max_files;
	long long size;     /* bytes in the file, buffered bytes included */
	char *buf;
	size_t buf_len;
	size_t buf_cap;
	uint64_t buf_entries;
	uint64_t lost;      /* entries lost to write errors */
	unsigned delay_ms;  /* test-only: sleep before each write, to simulate a slow disk */
	int last_error;
};

int logfile_open(struct logfile *lf, const char *path, long long max_size, int max_files,
		 unsigned delay_ms);
/* Append one encoded entry; rotates first if due. Write errors are counted in lost. */
void logfile_append(struct logfile *lf, const char *entry, size_t len);
/* Room for one entry of at most max_len bytes, straight in the write buffer, so the
 * encoder writes there and nothing is copied; rotates first if due, exactly as
 * logfile_append does. NULL if max_len exceeds the buffer: use logfile_append. */
char *logfile_reserve(struct logfile *lf, size_t max_len);
/* Account the len bytes written at logfile_reserve's pointer as one entry. */
void logfile_commit(struct logfile *lf, size_t len);
/* Encode one message and append it: in place when it fits the buffer, else through
 * scratch (room for JSONLOG_MAX_ENTRY). */
void logfile_append_message(struct logfile *lf, struct jsonlog_clock *clk,
			    enum log_stream stream, const char *data, size_t len,
			    const struct timespec *ts, char *scratch);
/* Write the buffered entries to the file. */
void logfile_flush(struct logfile *lf);
/* Flush, fsync and close. 0 or -errno of the fsync. */
int logfile_close(struct logfile *lf);
