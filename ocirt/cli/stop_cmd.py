"""`ocirt stop [-t SECONDS] [-f] [-s SIGNAL] CONTAINER`: stop a container."""

from __future__ import annotations

import argparse

from ocirt.cli.common import add_connection_args, call, guarded, print_json

HELP = "Stop a running or paused container."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("container", help="container id or name")
    parser.add_argument(
        "-t", "--time", dest="grace", type=float, default=30.0,
        help="seconds to wait before SIGKILL (30)",
    )  # fmt: skip
    parser.add_argument(
        "-f", "--force", action="store_true",
        help="with -s: SIGKILL when the grace period ends instead of failing",
    )  # fmt: skip
    parser.add_argument("-s", "--signal", default="", help="signal to send (default SIGTERM)")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        # A plain stop always ends in SIGKILL (decision 11); -s keeps Kanto's -f meaning.
        force = args.force or not args.signal
        params = {
            "id": args.container,
            "timeout": args.grace,
            "force": force,
            "signal": args.signal or "SIGTERM",
        }
        result = call(args, "stop", params)
        if args.json:
            print_json(result)
        return 0

    return guarded(body)
