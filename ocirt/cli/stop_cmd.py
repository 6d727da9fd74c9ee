"""`ocirt stop [-t DURATION] [-f] [-s SIGNAL] CONTAINER | -n NAME`: stop a container."""

from __future__ import annotations

from ocirt.cli.common import (
    add_connection_args,
    add_container_arg,
    call,
    guarded,
    print_json,
    seconds_arg,
    selector,
)

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

HELP = "Stop a running or paused container."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    add_container_arg(parser)
    parser.add_argument(
        "-t", "--time", dest="grace", metavar="DURATION", type=seconds_arg, default=None,
        help="grace period before SIGKILL: a Go duration (15s, 1m15s) or seconds "
        "(default: the daemon's default_ctrs_stop_timeout)",
    )  # fmt: skip
    parser.add_argument(
        "-f", "--force", action="store_true",
        help="with -s: SIGKILL when the grace period ends instead of failing",
    )  # fmt: skip
    parser.add_argument("-s", "--signal", default="", help="signal to send (default SIGTERM)")


def stop_params(args: argparse.Namespace) -> dict[str, Any]:
    # A plain stop always ends in SIGKILL (docs/kanto-compatibility.md decision 11); -s keeps
    # Kanto's -f meaning.
    params: dict[str, Any] = {
        **selector(args),
        "force": args.force or not args.signal,
        "signal": args.signal or "SIGTERM",
    }
    # No -t: no timeout sent, the daemon applies its configured default.
    if args.grace is not None:
        params["timeout"] = args.grace
    return params


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        result = call(args, "stop", stop_params(args))
        if args.json:
            print_json(result)
        return 0

    return guarded(body)
