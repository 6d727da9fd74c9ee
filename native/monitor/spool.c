/* The blocking-mode disk spool: splice reader, index queue and converter thread. Does I/O. */
#include "spool.h"

#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>

/* The converter's nice value while the container is not waiting for it. */
#define SPOOL_NICE 19

/* Once the converter has caught up, the reader starts the file again at offset 0 when it
 * has grown this far: a truncate per few MiB costs nothing, and it frees the last,
 * partly consumed page that punching whole pages leaves behind. */
#define SPOOL_RESTART (4ULL << 20)
/* A converter that never quite catches up must not grow the file without end: at this
 * offset the reader waits until everything is converted and restarts the file. */
#define SPOOL_FILE_MAX (1ULL << 30)
/* The converter gives pages back in steps of at least this much, since a punch takes
 * the inode lock that the reader's splice needs; and, when it has nothing left to do,
 * at least every SPOOL_PUNCH_IDLE_NS, well inside the 30 s after which writeback would
 * put dirty spool pages on disk (vm.dirty_expire_centisecs). */
#define SPOOL_PUNCH_STEP (4ULL << 20)
#define SPOOL_PUNCH_IDLE_NS 1000000000LL

uint64_t spool_default_cap(long long max_size, long long max_files)
{
	if (max_size <= 0)
		return SPOOL_CAP_MAX;
	uint64_t budget = (uint64_t)max_size;
	if (max_files > 1)
		budget = budget > SPOOL_CAP_MAX / (uint64_t)max_files
				 ? SPOOL_CAP_MAX
				 : budget * (uint64_t)max_files;
	if (budget < SPOOL_CAP_MIN)
		return SPOOL_CAP_MIN;
	return budget > SPOOL_CAP_MAX ? SPOOL_CAP_MAX : budget;
}

/* ---- conditions, all under mu ---- */

static bool must_wait(const struct spool *sp)
{
	uint64_t backlog = sp->write_off - sp->consumed;
	return backlog >= sp->cap || sp->count == SPOOL_QUEUE ||
	       (sp->write_off >= SPOOL_FILE_MAX && backlog != 0);
}

/* Hysteresis: the reader resumes at half the cap, so it is not woken per entry. */
static bool may_resume(const struct spool *sp)
{
	uint64_t backlog = sp->write_off - sp->consumed;
	return backlog <= sp->cap / 2 && sp->count <= SPOOL_QUEUE / 2 &&
	       (sp->write_off < SPOOL_FILE_MAX || backlog == 0);
}

/* ---- converter ---- */

static ssize_t pread_all(int fd, char *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = RETRY_EINTR(pread(fd, buf + got, len - got, (off_t)(off + got)));
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void give_back(struct spool *sp, uint64_t start, uint64_t end, bool idle)
{
	if (start < sp->punched)
		sp->punched = 0; /* the reader restarted the file at offset 0 */
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	/* Whole pages only: punching part of a page zeroes it but keeps it (dirty). */
	uint64_t to = end / page * page;
	if (!sp->punch_ok || to <= sp->punched)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long now_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	if (to - sp->punched < SPOOL_PUNCH_STEP &&
	    !(idle && now_ns - sp->punch_ns >= SPOOL_PUNCH_IDLE_NS))
		return;
	sp->punch_ns = now_ns;
	if (fallocate(sp->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)sp->punched,
		      (off_t)(to - sp->punched)) < 0) {
		/* Not fatal: the file is still truncated whenever the converter catches up. */
		util_warn(-errno, "freeing converted log spool pages (continuing without)");
		sp->punch_ok = false;
		return;
	}
	sp->punched = to;
}

static void convert(struct spool *sp, const struct spool_entry *e, bool idle)
{
	unsigned stream = e->nsec_stream >> 31;
	struct timespec ts = {.tv_sec = (time_t)e->sec,
			      .tv_nsec = (long)(e->nsec_stream & 0x7FFFFFFFu)};
	/* In pieces of the buffer's size: the splitter carries a line across pieces exactly
	 * as across reads, and every piece keeps the entry's time. */
	for (uint32_t done = 0; done < e->len;) {
		size_t want = e->len - done < SPOOL_CHUNK ? e->len - done : SPOOL_CHUNK;
		ssize_t got = pread_all(sp->fd, sp->buf, want, e->off + done);
		if (got != (ssize_t)want) {
			util_warn(got < 0 ? (int)got : -EIO,
				  "reading %zu bytes back from the log spool", want);
			break;
		}
		stdio_feed_log(sp->streams[stream], sp->buf, want, &ts, sp->lf, sp->clk);
		done += (uint32_t)want;
	}
	/* Write as soon as the queue runs dry so log readers see lines promptly. */
	if (idle)
		logfile_flush(sp->lf);
	give_back(sp, e->off, e->off + e->len, idle);
}

static void *converter_main(void *arg)
{
	struct spool *sp = arg;
	pid_t tid = gettid();
	/* The container's writes (through the reader) go first; the conversion takes the
	 * time left over. set_converter_nice says when that is reversed. */
	if (setpriority(PRIO_PROCESS, (id_t)tid, SPOOL_NICE) < 0)
		util_warn(-errno, "lowering the log converter's priority (continuing)");
	pthread_mutex_lock(&sp->mu);
	sp->tid = tid;
	for (;;) {
		while (sp->count == 0 && !sp->closing)
			pthread_cond_wait(&sp->cv, &sp->mu);
		if (sp->count == 0)
			break;
		struct spool_entry e = sp->queue[sp->head];
		sp->head = (sp->head + 1) % SPOOL_QUEUE;
		sp->count--;
		bool idle = sp->count == 0;
		pthread_mutex_unlock(&sp->mu);

		convert(sp, &e, idle);

		pthread_mutex_lock(&sp->mu);
		/* Published only after the pages were given back: the reader truncates only when
		 * everything is consumed, and then no punch may still be under way. */
		sp->consumed = e.off + e.len;
		if (sp->waiting && may_resume(sp)) {
			sp->waiting = false;
			uint64_t one = 1;
			if (write(sp->wake_fd, &one, sizeof(one)) < 0)
				util_warn(-errno, "waking the log reader");
		}
	}
	pthread_mutex_unlock(&sp->mu);
	logfile_flush(sp->lf);
	return NULL;
}

/* ---- reader ---- */

/* While the reader holds the container back, the converter is all that stands between
 * the container and its next write, so it runs at normal priority then (and while it
 * drains at exit); otherwise other work in the monitor's cgroup would slow the
 * container down to the converter's small share. Raising a nice value needs
 * CAP_SYS_NICE, which the monitor has as root; without it the converter stays low. */
static void set_converter_nice(struct spool *sp, pid_t tid, bool boost)
{
	if (tid <= 0 || boost == sp->boosted || !sp->boost_ok)
		return;
	if (setpriority(PRIO_PROCESS, (id_t)tid, boost ? 0 : SPOOL_NICE) < 0) {
		util_warn(-errno, "changing the log converter's priority (leaving it)");
		sp->boost_ok = false;
		return;
	}
	sp->boosted = boost;
}

/* An anonymous file in dir: O_TMPFILE, or a fresh name unlinked at once where the
 * filesystem does not support that. Either way nothing of it is left behind on exit. */
static int open_spool(const char *dir)
{
	int fd = RETRY_EINTR(open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd < 0 ? -errno : fd;
	char path[PATH_MAX];
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (snprintf(path, sizeof(path), "%s/.ocirt-spool-%d-%ld", dir, (int)getpid(),
		     (long)now.tv_nsec) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	_cleanup_close_ int tmp =
		RETRY_EINTR(open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600));
	if (tmp < 0)
		return -errno;
	if (unlink(path) < 0)
		return -errno;
	return util_take_fd(&tmp);
}

int spool_start(struct spool *sp, const char *dir, uint64_t cap, uint64_t fail_after, char *buf,
		struct stdio_stream *out, struct stdio_stream *err, struct logfile *lf,
		struct jsonlog_clock *clk)
{
	memset(sp, 0, sizeof(*sp));
	sp->fd = sp->wake_fd = -1;
	sp->cap = cap;
	sp->fail_after = fail_after;
	sp->buf = buf;
	sp->punch_ok = true;
	sp->boost_ok = true;
	sp->streams[STREAM_STDOUT] = out;
	sp->streams[STREAM_STDERR] = err;
	sp->lf = lf;
	sp->clk = clk;
	int rc = -ENOMEM;
	sp->queue = calloc(SPOOL_QUEUE, sizeof(*sp->queue));
	if (sp->queue == NULL)
		goto fail;
	sp->fd = open_spool(dir);
	if (sp->fd < 0) {
		rc = sp->fd;
		goto fail;
	}
	sp->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sp->wake_fd < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = -pthread_mutex_init(&sp->mu, NULL)) < 0)
		goto fail;
	if ((rc = -pthread_cond_init(&sp->cv, NULL)) < 0) {
		pthread_mutex_destroy(&sp->mu);
		goto fail;
	}
	pthread_attr_t attr;
	if ((rc = -pthread_attr_init(&attr)) == 0) {
		/* The converter needs little stack; a small one keeps the footprint down. */
		rc = -pthread_attr_setstacksize(&attr, 64 * 1024);
		if (rc == 0)
			rc = -pthread_create(&sp->thread, &attr, converter_main, sp);
		pthread_attr_destroy(&attr);
	}
	if (rc < 0) {
		pthread_cond_destroy(&sp->cv);
		pthread_mutex_destroy(&sp->mu);
		goto fail;
	}
	/* Fewer, larger hand-overs between the container and the reader: every wake-up
	 * of either costs more than moving the bytes. Not with a small cap, which a pipe
	 * that size would dwarf. Best effort: the default size works. */
	if (cap >= 4ULL * SPOOL_PIPE_SIZE)
		for (int i = 0; i < 2; i++)
			if (sp->streams[i]->fd >= 0)
				(void)fcntl(sp->streams[i]->fd, F_SETPIPE_SZ, SPOOL_PIPE_SIZE);
	return 0;
fail:
	util_closep(&sp->fd);
	util_closep(&sp->wake_fd);
	free(sp->queue);
	sp->queue = NULL;
	return rc;
}

ssize_t spool_take(struct spool *sp, struct stdio_stream *s)
{
	pthread_mutex_lock(&sp->mu);
	if (sp->count == SPOOL_QUEUE) {
		pthread_mutex_unlock(&sp->mu);
		return SPOOL_EMPTY; /* no room for an entry: the poll loop waits (spool_full) */
	}
	bool restart = sp->consumed == sp->write_off && sp->write_off >= SPOOL_RESTART;
	if (restart)
		sp->write_off = sp->consumed = 0;
	loff_t off = (loff_t)sp->write_off;
	pthread_mutex_unlock(&sp->mu);
	/* Safe outside the lock: with everything consumed the converter has nothing of the
	 * file left to read or punch, and it gets nothing new until the entry below. */
	if (restart && RETRY_EINTR(ftruncate(sp->fd, 0)) < 0) {
		sp->error = -errno;
		return SPOOL_BROKEN;
	}

	size_t want = sp->cap < SPOOL_PIPE_SIZE ? (size_t)sp->cap : SPOOL_PIPE_SIZE;
	if (sp->fail_after != UINT64_MAX) {
		if (sp->spooled >= sp->fail_after) {
			sp->error = -EIO;
			return SPOOL_BROKEN;
		}
		if (sp->fail_after - sp->spooled < want)
			want = (size_t)(sp->fail_after - sp->spooled);
	}
	ssize_t n = RETRY_EINTR(splice(s->fd, NULL, sp->fd, &off, want, SPLICE_F_NONBLOCK));
	if (n == 0) {
		s->eof = true;
		return 0;
	}
	if (n < 0) {
		if (errno == EAGAIN)
			return SPOOL_EMPTY;
		sp->error = -errno;
		return SPOOL_BROKEN;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	sp->spooled += (uint64_t)n;

	pthread_mutex_lock(&sp->mu);
	struct spool_entry *e = &sp->queue[(sp->head + sp->count) % SPOOL_QUEUE];
	*e = (struct spool_entry){
		.off = sp->write_off, .sec = now.tv_sec, .len = (uint32_t)n,
		.nsec_stream = (uint32_t)now.tv_nsec | (uint32_t)s->stream << 31};
	sp->count++;
	sp->write_off += (uint64_t)n;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	return n;
}

bool spool_full(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	bool full = must_wait(sp);
	if (full)
		sp->waiting = true;
	pid_t tid = sp->tid;
	pthread_mutex_unlock(&sp->mu);
	set_converter_nice(sp, tid, full);
	return full;
}

void spool_woken(struct spool *sp)
{
	uint64_t count;
	(void)!read(sp->wake_fd, &count, sizeof(count));
}

void spool_stop(struct spool *sp)
{
	pthread_mutex_lock(&sp->mu);
	pid_t tid = sp->tid;
	pthread_mutex_unlock(&sp->mu);
	set_converter_nice(sp, tid, true);
	pthread_mutex_lock(&sp->mu);
	sp->closing = true;
	pthread_cond_signal(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->thread, NULL);
	pthread_cond_destroy(&sp->cv);
	pthread_mutex_destroy(&sp->mu);
	util_closep(&sp->fd);
	util_closep(&sp->wake_fd);
	free(sp->queue);
	sp->queue = NULL;
}
