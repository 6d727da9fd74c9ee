/* Bounded message ring and its writer thread for non-blocking logging. Does I/O. */
#include "ring.h"

#include "util.h"

#include <string.h>

/* Records the writer moves out per lock: at least one of the largest. */
#define RING_BATCH (64 * 1024 + sizeof(struct record_header) + JSONLOG_MAX_MSG)

struct record_header {
	int64_t sec;
	int32_t nsec;
	uint32_t len;
	uint8_t stream;
};

static void ring_put(struct logring *r, size_t off, const void *src, size_t len)
{
	size_t pos = (r->head + off) % r->cap;
	size_t first = len < r->cap - pos ? len : r->cap - pos;
	memcpy(r->buf + pos, src, first);
	memcpy(r->buf, (const char *)src + first, len - first);
}

static void ring_copy(const struct logring *r, size_t off, void *dst, size_t len)
{
	size_t pos = (r->head + off) % r->cap;
	size_t first = len < r->cap - pos ? len : r->cap - pos;
	memcpy(dst, r->buf + pos, first);
	memcpy((char *)dst + first, r->buf, len - first);
}

/* Move whole records from the ring into r->batch, as many as fit. Caller holds mu. */
static size_t take_batch(struct logring *r)
{
	size_t taken = 0;
	while (taken < r->used) {
		struct record_header h;
		ring_copy(r, taken, &h, sizeof(h));
		size_t rec = sizeof(h) + h.len;
		if (taken + rec > RING_BATCH)
			break;
		ring_copy(r, taken, r->batch + taken, rec);
		taken += rec;
	}
	r->head = (r->head + taken) % r->cap;
	r->used -= taken;
	return taken;
}

static void *writer_main(void *arg)
{
	struct logring *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (r->used == 0 && !r->closing)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->used == 0) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		/* Encode and write outside the lock, so the readers never wait for the disk. */
		size_t taken = take_batch(r);
		bool now_empty = r->used == 0;
		pthread_mutex_unlock(&r->mu);

		for (size_t off = 0; off < taken;) {
			struct record_header h;
			memcpy(&h, r->batch + off, sizeof(h));
			struct timespec ts = {.tv_sec = (time_t)h.sec, .tv_nsec = h.nsec};
			logfile_append_message(r->lf, &r->clock, (enum log_stream)h.stream,
					       r->batch + off + sizeof(h), h.len, &ts);
			off += sizeof(h) + h.len;
		}
		/* Write as soon as the queue runs dry so readers see lines promptly. */
		if (now_empty)
			logfile_flush(r->lf);
	}
	logfile_flush(r->lf);
	return NULL;
}

int logring_start(struct logring *r, struct logfile *lf, size_t limit)
{
	memset(r, 0, sizeof(*r));
	r->lf = lf;
	r->limit = limit;
	size_t largest = sizeof(struct record_header) + JSONLOG_MAX_MSG;
	r->cap = limit > largest ? limit : largest;
	r->buf = malloc(r->cap);
	r->batch = malloc(RING_BATCH);
	if (r->buf == NULL || r->batch == NULL)
		return -ENOMEM;
	int rc = pthread_mutex_init(&r->mu, NULL);
	if (rc != 0)
		return -rc;
	rc = pthread_cond_init(&r->cv, NULL);
	if (rc != 0)
		return -rc;
	pthread_attr_t attr;
	rc = pthread_attr_init(&attr);
	if (rc != 0)
		return -rc;
	/* The writer needs little stack; a small one keeps the monitor's footprint down. */
	rc = pthread_attr_setstacksize(&attr, 64 * 1024);
	if (rc == 0)
		rc = pthread_create(&r->thread, &attr, writer_main, r);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return -rc;
	return 0;
}

void logring_push(struct logring *r, enum log_stream stream, const char *data, size_t len,
		  const struct timespec *ts)
{
	struct record_header h = {
		.sec = ts->tv_sec, .nsec = (int32_t)ts->tv_nsec, .len = (uint32_t)len,
		.stream = (uint8_t)stream};
	size_t need = sizeof(h) + len;
	if (r->used != 0 && r->used + need > r->limit) {
		r->dropped++;
		return;
	}
	ring_put(r, r->used, &h, sizeof(h));
	ring_put(r, r->used + sizeof(h), data, len);
	r->used += need;
}

void logring_begin(struct logring *r)
{
	pthread_mutex_lock(&r->mu);
}

void logring_end(struct logring *r)
{
	if (r->used != 0)
		pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

uint64_t logring_stop(struct logring *r)
{
	pthread_mutex_lock(&r->mu);
	r->closing = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	free(r->buf);
	free(r->batch);
	r->buf = r->batch = NULL;
	return r->dropped;
}
