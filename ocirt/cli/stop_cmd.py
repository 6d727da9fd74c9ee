"""`ocirt stop [-t SECONDS] [-f] [-s SIGNAL] CONTAINER`: stop a container."""

from __future__ import annotations

import argparse

from ocirt.cli.common import add_connection_args, call, guarded, print_json

HELP = "Stop a running or paused container."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("container", help="container id or name")
    parser.add_argument(
        "-t", "--time", dest="grace", type=float, default=None,
        help="seconds to wait before SIGKILL (default: the daemon's "
        "default_ctrs_stop_timeout, 30 unless configured)",
    )  # fmt: skip
    parser.add_argument(
        "-f", "--force", action="store_true",
        help="with -s: SIGKILL when the grace period ends instead of failing",
    )  # fmt: skip
    parser.add_argument("-s", "--signal", default="", help="signal to send (default SIGTERM)")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        # Only what was given: the daemon's manager makes the rest a plain stop, which
        # ends in SIGKILL (decision 11); with -s, -f keeps Kanto's meaning.
        params: dict[str, object] = {"id": args.container}
        if args.grace is not None:
            params["timeout"] = args.grace
        if args.signal:
            params["signal"] = args.signal
            params["force"] = args.force
        result = call(args, "stop", params)
        if args.json:
            print_json(result)
        return 0

    return guarded(body)
