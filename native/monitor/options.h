/* The monitor's command line (and the test hooks it reads from the environment).
 * Pure: parsing only, no I/O beyond a diagnostic on stderr for a bad number. */
#pragma once

#include <stdbool.h>

struct options {
	const char *runtime;
	const char *root;
	const char *id;
	const char *bundle;
	const char *state_dir;
	const char *pid_file;
	const char *log_path;
	const char *notify_socket;
	bool log_none;
	bool non_blocking;
	long long max_size;
	long long max_files;
	long long max_buffer;
	long long write_delay_ms;
	bool tty;
	bool open_stdin;
	bool start;
	int sync_fd;
	unsigned long long spool_cap;        /* 0: spool_default_cap */
	unsigned long long spool_fail_after; /* test hook; ULLONG_MAX: never */
	bool oom_watch_late;                 /* test hook: arm once the init is exiting */
};

/* Fill *o from argv and the test-hook variables. 0, or -EINVAL for anything the monitor
 * cannot run with (unknown option, missing or relative path, number out of range). */
int options_parse(int argc, char **argv, struct options *o);

/* The usage text, for stderr after options_parse failed. */
void options_usage(void);
