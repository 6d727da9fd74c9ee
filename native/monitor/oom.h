/* OOM-kill detection for the container's memory cgroup. Does I/O (reads /proc, cgroupfs).
 *
 * The kernel counts OOM kills per memory cgroup: "oom_kill N" in memory.oom_control
 * (cgroup v1, kernel >= 4.13) or memory.events (v2). The monitor reads the counter once
 * the container exists and again when its init has exited -- before anyone runs
 * `runc delete`, which removes the cgroup -- and reports an OOM kill if it grew.
 * A "fresh" watch counts from 0 instead: after `runc run` the container has already
 * run, and its cgroup was made by that very run, so any kill counted is its own.
 * The cgroup directory is found from /proc/<pid>/cgroup and /proc/self/mountinfo, never
 * built by hand: on our hosts cgroups are nested (docs/runtime-notes.md §6). That file is
 * the task's cgroup only while the task is not exiting: on cgroup v1 it says "/" from the
 * start of do_exit() on (PF_EXITING), before the task is a zombie, so a container killed
 * right after runc returned (an OOM kill at once) would have the root cgroup watched.
 * When the init is exiting or dead, runc's state.json (kept until `runc delete`, written
 * before the container's process runs) still names the cgroup. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct oom_watch {
	bool armed;
	char file[PATH_MAX]; /* memory.oom_control or memory.events */
	uint64_t start;
};

/* Locate the memory cgroup of a live pid and read the counter. -errno if it cannot
 * (-ESRCH: pid is gone, a zombie or exiting). */
int oom_watch_init(struct oom_watch *w, pid_t pid, bool fresh);
/* The same from a runc state.json (<root>/<id>/state.json). */
int oom_watch_init_runc_state(struct oom_watch *w, const char *state_file, bool fresh);
/* True if the counter grew since oom_watch_init. False, with a warning on stderr, if the
 * counter cannot be read (the cgroup is gone). */
bool oom_watch_fired(const struct oom_watch *w);

/* Test hook: return once pid is exiting (PF_EXITING), looking continuously, so that a
 * watch armed next sees an init in the middle of its exit. -errno (-ETIMEDOUT after
 * timeout_s seconds). */
int oom_test_wait_exiting(pid_t pid, int timeout_s);
