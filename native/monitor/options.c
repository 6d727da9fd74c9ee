/* The monitor's command line: see options.h. */
#include "options.h"
#include "util.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: ocirt-monitor --root DIR --id ID --bundle DIR --state-dir DIR --pid-file PATH\n"
	"       [--runtime runc] [--log-path PATH] [--log-driver json-file|none]\n"
	"       [--log-max-size BYTES] [--log-max-files N] [--log-mode blocking|non-blocking]\n"
	"       [--log-max-buffer BYTES] [--tty] [--stdin] [--notify-socket PATH] [--sync-fd N]\n"
	"       [--start]   (runc run -d: create and start; default: runc create only)\n"
	"       [--test-write-delay-ms MS]   (tests only: sleep before each log write)\n"
	"tests only, in the environment: OCIRT_MONITOR_TEST_SPOOL_CAP=BYTES (the spool's\n"
	"backlog cap), OCIRT_MONITOR_TEST_SPOOL_FAIL_AFTER=BYTES (the spool fails with EIO\n"
	"once it took that many bytes; 0: never used), OCIRT_MONITOR_TEST_OOM_WATCH_LATE=1\n"
	"(the OOM watch is armed only once the container's init is exiting)\n";

void options_usage(void)
{
	(void)util_write_all(STDERR_FILENO, usage, sizeof(usage) - 1);
}

/* A decimal number within [lo, hi] into *out; 0, or -EINVAL with a diagnostic. */
static int parse_num(const char *arg, const char *name, long long lo, long long hi,
		     long long *out)
{
	long long v;
	if (util_parse_ll(arg, &v) < 0 || v < lo || v > hi) {
		util_warn(0, "invalid %s: %s", name, arg);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int options_parse(int argc, char **argv, struct options *o)
{
	enum {
		OPT_RUNTIME = 256, OPT_ROOT, OPT_ID, OPT_BUNDLE, OPT_STATE, OPT_PIDFILE,
		OPT_LOGPATH, OPT_DRIVER, OPT_MAXSIZE, OPT_MAXFILES, OPT_MODE, OPT_MAXBUF,
		OPT_TTY, OPT_STDIN, OPT_NOTIFY, OPT_SYNC, OPT_DELAY, OPT_START,
	};
	static const struct option longopts[] = {
		{"runtime", required_argument, NULL, OPT_RUNTIME},
		{"root", required_argument, NULL, OPT_ROOT},
		{"id", required_argument, NULL, OPT_ID},
		{"bundle", required_argument, NULL, OPT_BUNDLE},
		{"state-dir", required_argument, NULL, OPT_STATE},
		{"pid-file", required_argument, NULL, OPT_PIDFILE},
		{"log-path", required_argument, NULL, OPT_LOGPATH},
		{"log-driver", required_argument, NULL, OPT_DRIVER},
		{"log-max-size", required_argument, NULL, OPT_MAXSIZE},
		{"log-max-files", required_argument, NULL, OPT_MAXFILES},
		{"log-mode", required_argument, NULL, OPT_MODE},
		{"log-max-buffer", required_argument, NULL, OPT_MAXBUF},
		{"tty", no_argument, NULL, OPT_TTY},
		{"stdin", no_argument, NULL, OPT_STDIN},
		{"notify-socket", required_argument, NULL, OPT_NOTIFY},
		{"sync-fd", required_argument, NULL, OPT_SYNC},
		{"test-write-delay-ms", required_argument, NULL, OPT_DELAY},
		{"start", no_argument, NULL, OPT_START},
		{NULL, 0, NULL, 0},
	};
	*o = (struct options){.runtime = "runc", .max_size = -1, .max_files = 1,
			      .max_buffer = 1000000, .sync_fd = -1,
			      .spool_fail_after = ULLONG_MAX};
	int c;
	long long v;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_RUNTIME: o->runtime = optarg; break;
		case OPT_ROOT: o->root = optarg; break;
		case OPT_ID: o->id = optarg; break;
		case OPT_BUNDLE: o->bundle = optarg; break;
		case OPT_STATE: o->state_dir = optarg; break;
		case OPT_PIDFILE: o->pid_file = optarg; break;
		case OPT_LOGPATH: o->log_path = optarg; break;
		case OPT_NOTIFY: o->notify_socket = optarg; break;
		case OPT_TTY: o->tty = true; break;
		case OPT_STDIN: o->open_stdin = true; break;
		case OPT_START: o->start = true; break;
		case OPT_DRIVER:
			if (strcmp(optarg, "none") == 0)
				o->log_none = true;
			else if (strcmp(optarg, "json-file") != 0)
				return -EINVAL;
			break;
		case OPT_MODE:
			if (strcmp(optarg, "non-blocking") == 0)
				o->non_blocking = true;
			else if (strcmp(optarg, "blocking") != 0)
				return -EINVAL;
			break;
		case OPT_MAXSIZE:
			if (parse_num(optarg, "--log-max-size", LLONG_MIN, LLONG_MAX,
				      &o->max_size) < 0)
				return -EINVAL;
			break;
		case OPT_MAXFILES:
			if (parse_num(optarg, "--log-max-files", 1, 1000, &o->max_files) < 0)
				return -EINVAL;
			break;
		case OPT_MAXBUF:
			if (parse_num(optarg, "--log-max-buffer", 1, 1LL << 30, &o->max_buffer) < 0)
				return -EINVAL;
			break;
		case OPT_DELAY:
			if (parse_num(optarg, "--test-write-delay-ms", 0, 60000,
				      &o->write_delay_ms) < 0)
				return -EINVAL;
			break;
		case OPT_SYNC:
			if (parse_num(optarg, "--sync-fd", 3, INT_MAX, &v) < 0)
				return -EINVAL;
			o->sync_fd = (int)v;
			break;
		default:
			return -EINVAL;
		}
	}
	/* Test hooks, in the environment so that no command line of the manager carries
	 * them: the spool's backlog cap in bytes, and a spool that fails (like a full disk)
	 * once it has taken that many bytes (0: at the first chunk, i.e. never used). */
	const char *hook = getenv("OCIRT_MONITOR_TEST_SPOOL_CAP");
	if (hook) {
		if (parse_num(hook, "OCIRT_MONITOR_TEST_SPOOL_CAP", 1, LLONG_MAX, &v) < 0)
			return -EINVAL;
		o->spool_cap = (unsigned long long)v;
	}
	hook = getenv("OCIRT_MONITOR_TEST_SPOOL_FAIL_AFTER");
	if (hook) {
		if (parse_num(hook, "OCIRT_MONITOR_TEST_SPOOL_FAIL_AFTER", 0, LLONG_MAX, &v) < 0)
			return -EINVAL;
		o->spool_fail_after = (unsigned long long)v;
	}
	/* The OOM watch armed during the init's exit: the race of an init OOM-killed (or
	 * ended by one) right after runc returned, every time. */
	hook = getenv("OCIRT_MONITOR_TEST_OOM_WATCH_LATE");
	if (hook) {
		if (parse_num(hook, "OCIRT_MONITOR_TEST_OOM_WATCH_LATE", 0, 1, &v) < 0)
			return -EINVAL;
		o->oom_watch_late = v == 1;
	}
	if (optind != argc || !o->root || !o->id || !o->bundle || !o->state_dir || !o->pid_file)
		return -EINVAL;
	if (!o->log_none && !o->log_path)
		return -EINVAL;
	/* The monitor runs with cwd "/"; relative paths would silently mean something else. */
	const char *paths[] = {o->root, o->bundle, o->state_dir, o->pid_file, o->log_path,
			       o->notify_socket};
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (paths[i] && paths[i][0] != '/')
			return -EINVAL;
	return 0;
}
