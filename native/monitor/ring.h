/* Non-blocking log mode: a bounded byte ring between the stdio readers and a writer
 * thread that owns the log file. Does I/O (in its thread).
 *
 * Docker's rule (ring.go, docs/runtime-notes.md §3.5): a message is queued if the queue
 * is empty or if it still fits in max_buffer bytes; otherwise it is dropped and counted.
 * The reader side therefore never waits for the disk, so the container never stalls.
 * Queued bytes are counted as message bytes plus a small fixed header per message. */
#pragma once

#include "jsonlog.h"
#include "logfile.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct logring {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool closing;
	char *buf;
	size_t cap;    /* physical size: max(limit, one largest record) */
	size_t limit;  /* --log-max-buffer */
	size_t head;   /* offset of the oldest record */
	size_t used;
	uint64_t dropped;
	struct logfile *lf;
	struct jsonlog_clock clock;
	char *batch;   /* writer-side: records taken out of the ring in one go */
};

int logring_start(struct logring *r, struct logfile *lf, size_t limit);
/* Hold the ring for the messages of one read: one lock and at most one wake-up of the
 * writer per read instead of per message. Never waits for I/O: the writer holds the
 * lock only to move records out, never while it writes. */
void logring_begin(struct logring *r);
/* Queue one message, or drop and count it if the buffer is full. Between begin and end. */
void logring_push(struct logring *r, enum log_stream stream, const char *data, size_t len,
		  const struct timespec *ts);
void logring_end(struct logring *r);
/* Let the writer drain everything that is queued, then join it. Returns drops. Only
 * after logring_start succeeded. */
uint64_t logring_stop(struct logring *r);
