/* Memory-cgroup OOM-kill counter discovery and comparison. Does I/O. */
#include "oom.h"

#include "util.h"

#include <stdio.h>
#include <string.h>

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

int oom_watch_init(struct oom_watch *w, pid_t pid)
{
	char cg[PATH_MAX], dir[PATH_MAX];
	bool v2 = false;
	w->armed = false;
	int rc = cgroup_path(pid, &v2, cg, sizeof(cg));
	if (rc < 0)
		return rc;
	rc = cgroup_dir(v2, cg, dir, sizeof(dir));
	if (rc < 0)
		return rc;
	if (snprintf(w->file, sizeof(w->file), "%s/%s", dir,
		     v2 ? "memory.events" : "memory.oom_control") >= (int)sizeof(w->file))
		return -ENAMETOOLONG;
	rc = read_counter(w->file, &w->start);
	if (rc < 0)
		return rc;
	w->armed = true;
	return 0;
}

bool oom_watch_fired(const struct oom_watch *w)
{
	uint64_t now;
	if (!w->armed || read_counter(w->file, &now) < 0)
		return false;
	return now > w->start;
}
