"""Shared pieces of the container commands: the daemon connection, selecting a container,
Go durations, output, errors. Pure apart from printing; the socket lives in
`ocirt.cli.client`.

Thin on purpose (issue 17): a common command is one JSON line on a unix socket, so this
module imports no other ocirt package (no ocirt.errors, no ocirt.config) and only the
stdlib a request needs; `json` itself is imported where a command prints or sends.
"""

from __future__ import annotations

import sys

from ocirt.cli.errors import CliError as CliError  # re-exported for the commands

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

DEFAULT_SOCKET = "/var/run/container-management/ocirt.sock"

# kanto-cm's texts (containerm/util/cli/args_util.go), the trailing space included.
NO_CONTAINER = "You must provide either an ID or a name for the container via --name (-n) "
ID_AND_NAME = (
    "Container ID and --name (-n) cannot be provided at the same time - use only one of them"
)


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    # The defaults come from the global options (`ocirt --host S list`), see main.
    parser.add_argument(
        "--socket",
        "--host",
        dest="socket",
        default=DEFAULT_SOCKET,
        help="the daemon's local API socket (default: %(default)s, or $OCIRT_SOCKET)",
    )
    parser.add_argument(
        "--timeout",
        type=seconds_arg,
        default=30.0,
        help="seconds (or a Go duration) to wait for the daemon (30)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def add_container_arg(parser: argparse.ArgumentParser) -> None:
    """kanto-cm's way to name a container: an ID (or a unique ID prefix, or a name, as
    Docker takes them) as the argument, or its name with -n/--name."""
    parser.add_argument("container", nargs="?", help="container ID, unique ID prefix or name")
    parser.add_argument(
        "-n", "--name", dest="by_name", metavar="NAME", default="", help="container name"
    )


def selector(args: argparse.Namespace) -> dict[str, str]:
    """The local API's container selector: {"id": ...} or {"name": ...}."""
    if args.container and args.by_name:
        raise CliError(ID_AND_NAME)
    if args.by_name:
        return {"name": args.by_name}
    if not args.container:
        raise CliError(NO_CONTAINER)
    return {"id": args.container}


def call(args: argparse.Namespace, op: str, params: dict[str, Any]) -> Any:
    from ocirt.cli.client import request

    # An operation may legitimately take longer than the connect timeout (a stop with
    # a grace period, a pull): only connecting is bounded by --timeout.
    return request(
        args.socket,
        op,
        params,
        timeout=None if op != "sysinfo" else args.timeout,
        connect_timeout=args.timeout,
    )


def guarded(body: Callable[[], int]) -> int:
    """Run a command body; a CLI or daemon error becomes `Error: ...` on stderr and exit 1
    (kanto-cm's form). Errors of the ocirt package (commands that run ocirt code in the
    CLI process, e.g. `spec`) are printed the same way."""
    try:
        return body()
    except CliError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except Exception as exc:
        # Only a command that imported ocirt.errors can raise one of its errors.
        errors = sys.modules.get("ocirt.errors")
        if errors is not None and isinstance(exc, errors.OcirtError):
            print(f"Error: {exc.message}", file=sys.stderr)
            return 1
        raise


def print_json(value: object, indent: int = 2) -> None:
    import json

    print(json.dumps(value, indent=indent))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]
    return "\n".join(lines)


# Go's time.ParseDuration units, in seconds.
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def go_duration(text: str) -> float:
    """Go's time.ParseDuration (`15s`, `1m15s`, `1.5h`, `-2m`), in seconds. Raises
    CliError with Go's own text (kanto-cm prints it as is)."""
    invalid = CliError(f'time: invalid duration "{text}"')
    rest = text
    sign = 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise invalid
    total = 0.0
    while rest:
        number_end = 0
        while number_end < len(rest) and (rest[number_end].isdigit() or rest[number_end] == "."):
            number_end += 1
        number = rest[:number_end]
        if not number or number == "." or number.count(".") > 1 or not number.isascii():
            raise invalid
        unit_end = number_end
        while unit_end < len(rest) and not (rest[unit_end].isdigit() or rest[unit_end] == "."):
            unit_end += 1
        unit = rest[number_end:unit_end]
        if not unit:
            raise CliError(f'time: missing unit in duration "{text}"')
        if unit not in _UNITS:
            raise CliError(f'time: unknown unit "{unit}" in duration "{text}"')
        total += float(number) * _UNITS[unit]
        rest = rest[unit_end:]
    return sign * total


def seconds_arg(text: str) -> float:
    """A grace period or timeout: a Go duration (`15s`, `1m15s`) as kanto-cm takes it, or
    plain seconds (`10`, `2.5`) as ocirt and Docker take them. Never negative."""
    try:
        value = float(text)
    except ValueError:
        value = go_duration(text)
    if value != value or value < 0 or value == float("inf"):
        raise CliError(f"invalid duration {text!r}: it must be a number of seconds >= 0")
    return value


def container_command(
    op: str, help_text: str
) -> tuple[str, Callable[..., None], Callable[..., int]]:
    """HELP, add_arguments and run of a command that takes one container and no options."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_connection_args(parser)
        add_container_arg(parser)

    def run(args: argparse.Namespace) -> int:
        def body() -> int:
            result = call(args, op, selector(args))
            if args.json:
                print_json(result)
            return 0

        return guarded(body)

    return help_text, add_arguments, run
