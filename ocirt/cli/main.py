"""The `ocirt` command: global options, dispatch, and the end of the process.

`ocirt [--host SOCKET] [--timeout T] COMMAND [options]`. Each command is a module
`ocirt.cli.<module>` with `HELP: str`, `add_arguments(parser)` and `run(args) -> int`
(the exit code). Only the chosen command's module is imported and only its parser is
built: `ocirt list` is one JSON line on a unix socket, and the interpreter's start-up is
most of its cost (issue 17, bench/cli_startup.py).

Exit codes: 0, 1 for an error (kanto-cm's `Error: ...`), 2 for a usage error (argparse),
130 on Ctrl-C, and 141 (128 + SIGPIPE, what a shell shows for Docker's or Go's CLI) when
the reader of stdout went away (`ocirt get X | head -1`): quietly, without a traceback.
"""

from __future__ import annotations

import os
import sys

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import SimpleNamespace
    from typing import Any

# command name -> (module under ocirt.cli, one-line help for `ocirt --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("create_cmd", "Create a container from an image (started only with --start)."),
    "start": ("start_cmd", "Start a container."),
    "stop": ("stop_cmd", "Stop a running or paused container."),
    "pause": ("pause_cmd", "Pause (freeze) a running container."),
    "resume": ("resume_cmd", "Resume a paused container."),
    "rename": ("rename_cmd", "Rename a container."),
    "update": ("update_cmd", "Update a container's restart policy or memory limits."),
    "remove": ("remove_cmd", "Remove containers (-f also stops running ones)."),
    "get": ("get_cmd", "Show a container (as JSON)."),
    "list": ("list_cmd", "List containers."),
    "ps": ("list_cmd", "List containers (as list: Docker's name for it)."),
    "logs": ("logs_cmd", "Print a container's log."),
    "sysinfo": ("sysinfo_cmd", "Show information about the daemon."),
    "image": ("image_cmd", "Manage images."),
    "spec": ("spec_cmd", "Print the OCI runtime spec of a container config (no daemon)."),
    "daemon": ("daemon_cmd", "Run the ocirt daemon."),
    "apply": ("apply_cmd", "Apply a desired state (update agent) on this device."),
    "stats": ("stats_cmd", "Show containers' resource use (CPU, memory, I/O, pids)."),
    "network": ("network_cmd", "Manage the bridge network (prune)."),
}

# The everyday commands, parsed by ocirt.cli.fastargs first (argparse when it gives up).
FAST_COMMANDS = frozenset(
    ("list", "ps", "get", "start", "stop", "pause", "resume", "remove", "rename", "update",
     "logs", "sysinfo", "daemon")
)  # fmt: skip

USAGE = "usage: ocirt [-h] [--version] [--host SOCKET] [--timeout T] COMMAND ..."

EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130


def usage_text() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        USAGE,
        "",
        "A small container manager speaking Eclipse Kanto's container-management API.",
        "",
        "global options (before COMMAND):",
        "  -h, --help            show this help and exit",
        "  --version             print the version and exit",
        "  --host, --socket SOCKET",
        "                        the daemon's local API socket (or $OCIRT_SOCKET)",
        "  --timeout T           seconds (or a Go duration) to wait for the daemon (30)",
        "",
        "commands:",
        *(f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()),
        "",
        "`ocirt COMMAND --help` shows a command's options.",
    ]
    return "\n".join(lines)


def terminal_columns() -> int:
    """shutil.get_terminal_size().columns, without importing shutil."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return 80


def _usage_error(message: str) -> int:
    print(f"{USAGE}\nocirt: error: {message}", file=sys.stderr)
    return 2


def _dispatch(argv: list[str]) -> int:
    from ocirt.cli.common import CliError, guarded

    defaults: dict[str, object] = {}
    socket = os.environ.get("OCIRT_SOCKET")
    if socket:
        defaults["socket"] = socket
    index = 0
    while index < len(argv) and argv[index].startswith("-"):
        option, sep, value = argv[index].partition("=")
        if option in ("-h", "--help"):
            print(usage_text())
            return 0
        if option == "--version":
            from ocirt import __version__

            print(f"ocirt version {__version__}")
            return 0
        if option not in ("--host", "--socket", "--timeout"):
            return _usage_error(f"unknown global option {option} (global options come first)")
        if not sep:
            index += 1
            if index == len(argv):
                return _usage_error(f"{option} needs a value")
            value = argv[index]
        if option == "--timeout":
            from ocirt.cli.common import seconds_arg

            try:
                defaults["timeout"] = seconds_arg(value)
            except CliError as exc:
                print(f"Error: {exc.message}", file=sys.stderr)
                return 1
        else:
            defaults["socket"] = value
        index += 1
    if index == len(argv):
        return _usage_error("a command is required (ocirt --help lists them)")
    name = argv[index]
    if name not in COMMANDS:
        return _usage_error(f"unknown command {name!r} (ocirt --help lists them)")
    rest = argv[index + 1 :]

    def body() -> int:
        module = command_module(name)
        args: argparse.Namespace | SimpleNamespace | None = None
        if name in FAST_COMMANDS:
            from ocirt.cli.fastargs import FastParser

            fast = FastParser()
            module.add_arguments(fast)
            args = fast.parse(rest, defaults)
        if args is None:
            parser = command_parser(name)
            # Global options are the defaults of the command's own --socket/--timeout.
            known = {action.dest for action in parser._actions}
            parser.set_defaults(**{k: v for k, v in defaults.items() if k in known})
            args = parser.parse_args(rest)
        code: int = module.run(args)
        return code

    return guarded(body)


def command_module(name: str) -> Any:
    """The module of a command, imported now (`__import__`: importlib costs an import)."""
    qualified = f"ocirt.cli.{COMMANDS[name][0]}"
    __import__(qualified)
    return sys.modules[qualified]


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one command (its module imported now); `run` is set on the result."""
    import argparse

    class Formatter(argparse.HelpFormatter):
        # argparse's own imports shutil (and with it bz2, lzma, fnmatch: ~2 ms on every
        # call) for the terminal width, which only printing the help needs.
        def __init__(
            self,
            prog: str,
            indent_increment: int = 2,
            max_help_position: int = 24,
            width: int | None = None,
        ) -> None:
            if width is None:
                width = terminal_columns() - 2
            super().__init__(prog, indent_increment, max_help_position, width)

    help_text = COMMANDS[name][1]
    module = command_module(name)
    parser = argparse.ArgumentParser(
        prog=f"ocirt {name}", description=help_text, formatter_class=Formatter
    )
    module.add_arguments(parser)
    parser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _dispatch(list(sys.argv[1:] if argv is None else argv))
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader is gone: nothing more can be said on stdout, and Python's own flush
        # at exit must not fail again with a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
