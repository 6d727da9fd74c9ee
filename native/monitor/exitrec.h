/* The exit record the monitor leaves in the state dir, and the optional exit notice.
 * Does I/O.
 *
 * <state-dir>/exit.json, replaced atomically (temp, fsync, rename, fsync dir):
 *   {"exitCode":137,"signal":9,"finishedAt":"...Z","oomKilled":false,
 *    "droppedLogLines":0,"containerPid":1234}
 * exitCode is the exit status, or 128+signal for a signalled init ("signal" is present
 * only then), as containerd's reaper and Docker report it. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct exit_record {
	int exit_code;
	int signal; /* 0 if the process exited normally */
	struct timespec finished;
	bool oom_killed;
	uint64_t dropped;
	pid_t pid;
};

struct exit_record exitrec_from_status(pid_t pid, int wait_status);
/* Reserve the space of the record before the container runs: the container that fills
 * the disk must not cost its own exit record. Returns an fd for exitrec_reserve_sync (or
 * -errno): the fsync is not needed for the space and costs milliseconds on a busy disk,
 * so it is done once the container's start is reported, before the record can be
 * written. */
int exitrec_reserve(const char *state_dir);
/* Sync and close what exitrec_reserve returned. 0 or -errno. */
int exitrec_reserve_sync(int fd);
int exitrec_write(const char *state_dir, const struct exit_record *r);
/* Send {"id":..,"exitCode":..}\n to a unix socket (datagram, else stream). Best effort:
 * a manager that is down or slow must not hold up or fail the monitor. */
void exitrec_notify(const char *socket_path, const char *id, const struct exit_record *r);
