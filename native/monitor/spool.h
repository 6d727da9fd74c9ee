/* Blocking log mode: the container's output goes through a disk spool, so the container
 * waits for a copy into a file and not for the json-file encoding. Does I/O.
 *
 * Reader (the poll loop): each readable chunk of a pipe is moved unmodified into an
 * anonymous file beside the log with splice() (no copy through user space), and an
 * index entry {stream, offset, length, time of that read} is queued.
 * Converter (a thread): takes the entries in order, preads the bytes and feeds them
 * through the line splitter and encoder into the log file (rotation as usual), then
 * gives the consumed range back with FALLOC_FL_PUNCH_HOLE, so when it keeps up the
 * spool's pages are freed before writeback ever puts them on disk. When it has consumed
 * everything the reader truncates the file and starts again at offset 0.
 *
 * Back-pressure: once `cap` spooled bytes (or SPOOL_QUEUE entries) wait, the reader
 * stops polling the pipes until the converter is below half of both; it wakes the poll
 * loop through an eventfd. Nothing is ever dropped, the disk buffer is bounded, and the
 * container is held back only by a full spool or by a disk slower than it writes.
 *
 * Hand-over: the pipes are enlarged to SPOOL_PIPE_SIZE (unless the cap is small), one
 * hand-over per MiB instead of per 64 KiB: each wake-up of container or reader costs
 * more than moving the bytes, and this is what brings a fast writer to `cat`'s speed
 * (bench/monitor_bench.py).
 *
 * Scheduling: the converter runs at nice 19, so that within the monitor's cgroup the
 * readers, which containers wait on, get the CPU before any converter; and at normal
 * priority while its reader holds the container back or the spool drains at exit, so
 * that a waiting container never waits on a low-priority thread. A container in its
 * own cgroup competes with the monitor's group by cgroup weight, which no nice value
 * changes; on the 2-core bench nice 19 and 0 measured the same.
 *
 * Ownership while the spool runs: the converter owns the log file, the clock and the
 * splitter state of both streams (len, buf, in_partial, first_ts); the reader only the
 * streams' fd and eof. spool_stop hands everything back.
 *
 * Failure: spool_take reports a spool error (splice's EINVAL on odd filesystems,
 * ENOSPC, EIO, ...) as SPOOL_BROKEN; the caller then calls spool_stop, which lets the
 * converter finish what is spooled, and reads the pipes directly from then on. The
 * bytes of the failed splice are still in the pipe, so order is kept. */
#pragma once

#include "jsonlog.h"
#include "logfile.h"
#include "streams.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Index entries the queue holds (24 bytes each): one per splice, of up to SPOOL_PIPE_SIZE
 * bytes. Many small reads fill it before the cap, and then the container waits for the
 * converter a little earlier, which loses nothing. */
#define SPOOL_QUEUE 256
/* The converter's read buffer, lent by the caller: small, as it counts in the RSS, and a
 * pread per 16 KiB costs little. */
#define SPOOL_CHUNK 16384
/* The pipes' capacity while the spool runs, and the most one splice moves. */
#define SPOOL_PIPE_SIZE (1 << 20)

/* spool_take's answer besides a byte count: the pipe is empty for now. */
#define SPOOL_EMPTY (-EAGAIN)
/* The spool itself failed; the errno is in spool.error. */
#define SPOOL_BROKEN (-EPIPE)

struct spool_entry {
	uint64_t off;
	int64_t sec;
	uint32_t nsec_stream; /* tv_nsec | stream << 31 */
	uint32_t len;
};

struct spool {
	int fd;
	int wake_fd;             /* eventfd: the converter made room while the reader waited */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Under mu. */
	bool closing;
	bool waiting;            /* the reader stopped polling the pipes for room */
	uint64_t write_off;      /* end of the spooled bytes; only the reader changes it */
	uint64_t consumed;       /* end of the converted bytes; only the converter */
	struct spool_entry *queue;
	unsigned head, count;
	pid_t tid;               /* the converter's, once it runs */
	/* Reader only. */
	uint64_t cap;
	uint64_t spooled;        /* bytes ever spooled, for the test hook */
	uint64_t fail_after;     /* test hook: splices fail with EIO past this many bytes */
	int error;               /* -errno of the failure behind SPOOL_BROKEN */
	bool boosted;            /* the converter runs at normal priority */
	bool boost_ok;
	/* Converter only. */
	uint64_t punched;        /* start of the range not yet given back */
	long long punch_ns;      /* CLOCK_MONOTONIC of the last punch */
	bool punch_ok;
	char *buf;
	struct stdio_stream *streams[2];
	struct logfile *lf;
	struct jsonlog_clock *clk;
};

/* The backlog cap for a log of max_size bytes per file (<= 0: unbounded) and max_files
 * files: the log's own disk budget (max_size * max_files), within [SPOOL_CAP_MIN,
 * SPOOL_CAP_MAX]. Why: the cap is the largest burst the container can write without
 * waiting for the encoder, and its price is disk space beside the log. Tying it to the
 * budget the user gave the log keeps logging within twice that budget on disk, lets
 * Kanto's default (2 x 100 MiB) absorb a 200 MiB burst, and keeps a deliberately small
 * log small. SPOOL_CAP_MAX bounds unrotated logs and the page cache one container can
 * dirty; SPOOL_CAP_MIN keeps a tiny budget from holding the container at every read. */
#define SPOOL_CAP_MIN (1ULL << 20)
#define SPOOL_CAP_MAX (256ULL << 20)
uint64_t spool_default_cap(long long max_size, long long max_files);

/* Create the anonymous spool file in dir (O_TMPFILE, else a name unlinked at once),
 * enlarge the pipes and start the converter. buf: SPOOL_CHUNK bytes the converter uses
 * until spool_stop (the poll loop's read buffer, idle while the spool runs). fail_after:
 * test hook, UINT64_MAX for none. 0 or -errno; on failure nothing is left running or
 * open. */
int spool_start(struct spool *sp, const char *dir, uint64_t cap, uint64_t fail_after, char *buf,
		struct stdio_stream *out, struct stdio_stream *err, struct logfile *lf,
		struct jsonlog_clock *clk);
/* Move one readable chunk of s's pipe into the spool and queue it. Bytes moved, 0 at EOF
 * (s->eof is set), SPOOL_EMPTY, or SPOOL_BROKEN. */
ssize_t spool_take(struct spool *sp, struct stdio_stream *s);
/* Whether the reader must leave the pipes alone until wake_fd is readable. If it must,
 * the converter is told to signal wake_fd once there is room again. */
bool spool_full(struct spool *sp);
/* After wake_fd was readable: clear it. */
void spool_woken(struct spool *sp);
/* Let the converter convert everything spooled (at normal priority), join it and close
 * the spool. Only after spool_start succeeded. */
void spool_stop(struct spool *sp);
