/* Memory-cgroup OOM-kill counter discovery and comparison. Does I/O. */
#include "oom.h"
#include "runtime.h"

#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Does the comma-separated list contain the word? */
static bool has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == wl && strncmp(p, word, wl) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

/* From /proc/<pid>/cgroup: the memory cgroup path (v1) or the unified path (v2). */
static int cgroup_path(pid_t pid, bool *v2, char *out, size_t size)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	ssize_t n = util_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	char unified[PATH_MAX] = "";
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1;
		const char *cg = c2 + 1;
		if (has_word(ctrls, "memory")) {
			*v2 = false;
			return snprintf(out, size, "%s", cg) < (int)size ? 0 : -ENAMETOOLONG;
		}
		if (strncmp(line, "0", (size_t)(c1 - line)) == 0 && *ctrls == '\0')
			snprintf(unified, sizeof(unified), "%s", cg);
	}
	if (unified[0] == '\0')
		return -ENOENT;
	*v2 = true;
	return snprintf(out, size, "%s", unified) < (int)size ? 0 : -ENAMETOOLONG;
}

/* The directory of cgroup cg: the mount of the right hierarchy plus cg relative to the
 * mount's root (a mount may expose only a subtree, e.g. inside a cgroup namespace). */
static int cgroup_dir(bool v2, const char *cg, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return -errno;
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;
	while (getline(&line, &cap, f) > 0) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char *sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		char root[PATH_MAX], mnt[PATH_MAX], fstype[32], source[256], super[512];
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2)
			continue;
		if (sscanf(sep + 3, "%31s %255s %511s", fstype, source, super) != 3)
			continue;
		bool match = v2 ? strcmp(fstype, "cgroup2") == 0
				: strcmp(fstype, "cgroup") == 0 && has_word(super, "memory");
		if (!match)
			continue;
		size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
		if (strncmp(cg, root, rl) != 0 || (cg[rl] != '/' && cg[rl] != '\0'))
			continue;
		rc = snprintf(out, size, "%s%s", mnt, cg + rl) < (int)size ? 0 : -ENAMETOOLONG;
		break;
	}
	free(line);
	fclose(f);
	return rc;
}

static int read_counter(const char *file, uint64_t *out)
{
	char buf[1024];
	ssize_t n = util_read_file(file, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		unsigned long long v;
		if (sscanf(p, "oom_kill %llu", &v) == 1) {
			*out = v;
			return 0;
		}
	}
	return -ENOENT;
}

/* PF_EXITING (include/linux/sched.h): set at the start of do_exit(), never cleared. */
#define PF_EXITING_FLAG 0x00000004UL

/* The state letter and flags of /proc/<pid>/stat (fields 3 and 9); -errno. */
static int task_stat(pid_t pid, char *state, unsigned long *flags)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	ssize_t n = util_read_file(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* The name (field 2) may hold anything, ')' too: the fields follow its last ')'. */
	const char *paren = strrchr(buf, ')');
	if (paren == NULL || sscanf(paren + 1, " %c %*d %*d %*d %*d %*d %lu", state, flags) != 2)
		return -EINVAL;
	return 0;
}

/* Running user code still: not exiting, not a zombie. On cgroup v1, /proc/<pid>/cgroup
 * prints "/" for every hierarchy once the task is exiting (PF_EXITING, set at the start of
 * do_exit), well before it becomes a zombie; a path read while this holds is the task's. */
static bool not_exiting(pid_t pid)
{
	char state;
	unsigned long flags;
	return task_stat(pid, &state, &flags) == 0 && !(flags & PF_EXITING_FLAG) &&
	       state != 'Z' && state != 'X' && state != 'x';
}

static int arm(struct oom_watch *w, const char *dir, bool v2, bool fresh)
{
	if (snprintf(w->file, sizeof(w->file), "%s/%s", dir,
		     v2 ? "memory.events" : "memory.oom_control") >= (int)sizeof(w->file))
		return -ENAMETOOLONG;
	uint64_t now = 0;
	int rc = read_counter(w->file, &now);
	if (rc < 0)
		return rc;
	w->start = fresh ? 0 : now;
	w->armed = true;
	return 0;
}

int oom_watch_init(struct oom_watch *w, pid_t pid, bool fresh)
{
	char cg[PATH_MAX], dir[PATH_MAX];
	bool v2 = false;
	w->armed = false;
	int rc = cgroup_path(pid, &v2, cg, sizeof(cg));
	if (rc < 0)
		return rc;
	/* Checked after the read: PF_EXITING is never cleared, so a task not exiting now was
	 * not exiting when its cgroup was read, and the path read is its cgroup's. */
	if (!not_exiting(pid))
		return -ESRCH;
	rc = cgroup_dir(v2, cg, dir, sizeof(dir));
	if (rc < 0)
		return rc;
	return arm(w, dir, v2, fresh);
}

/* The string value of "key" inside the flat object text [obj, end); -ENOENT if absent,
 * -EINVAL if it holds an escape (cgroup paths never need one; refuse to guess). */
static int json_member(const char *obj, const char *end, const char *key, char *out,
		       size_t size)
{
	char needle[64];
	int len = snprintf(needle, sizeof(needle), "\"%s\":\"", key);
	if (len < 0 || len >= (int)sizeof(needle))
		return -EINVAL;
	const char *at = memmem(obj, (size_t)(end - obj), needle, (size_t)len);
	if (at == NULL)
		return -ENOENT;
	const char *v = at + len;
	const char *q = memchr(v, '"', (size_t)(end - v));
	if (q == NULL || memchr(v, '\\', (size_t)(q - v)) != NULL)
		return -EINVAL;
	if ((size_t)(q - v) >= size)
		return -ENAMETOOLONG;
	memcpy(out, v, (size_t)(q - v));
	out[q - v] = '\0';
	return 0;
}

int oom_watch_init_runc_state(struct oom_watch *w, const char *state_file, bool fresh)
{
	w->armed = false;
	_cleanup_free_ char *buf = NULL;
	ssize_t got = util_read_alloc(state_file, RUNC_STATE_MAX, &buf);
	if (got < 0)
		return (int)got;
	size_t used = (size_t)got;
	/* libcontainer's State: "cgroup_paths" maps each controller to its directory; the
	 * object holds only strings, so it ends at the first '}'. */
	static const char key[] = "\"cgroup_paths\":{";
	const char *obj = memmem(buf, used, key, sizeof(key) - 1);
	if (obj == NULL)
		return -ENOENT;
	obj += sizeof(key) - 1;
	const char *end = memchr(obj, '}', used - (size_t)(obj - buf));
	if (end == NULL)
		return -EINVAL;
	char dir[PATH_MAX];
	int rc = json_member(obj, end, "memory", dir, sizeof(dir));
	if (rc == 0)
		return arm(w, dir, false, fresh);
	if (rc != -ENOENT)
		return rc;
	rc = json_member(obj, end, "", dir, sizeof(dir));
	return rc < 0 ? rc : arm(w, dir, true, fresh);
}

bool oom_watch_fired(const struct oom_watch *w)
{
	if (!w->armed)
		return false; /* said when the watch could not be armed */
	uint64_t now;
	int rc = read_counter(w->file, &now);
	if (rc < 0) {
		util_warn(rc, "cannot read the OOM counter %s; oomKilled will be false", w->file);
		return false;
	}
	return now > w->start;
}

int oom_test_wait_exiting(pid_t pid, int timeout_s)
{
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* Busy, not sleeping: the point is to look during the exit, before the zombie. */
	do {
		char state;
		unsigned long flags;
		int rc = task_stat(pid, &state, &flags);
		if (rc < 0)
			return rc;
		if (flags & PF_EXITING_FLAG)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - t0.tv_sec < timeout_s);
	return -ETIMEDOUT;
}
