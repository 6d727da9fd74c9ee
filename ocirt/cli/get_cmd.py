"""`ocirt get CONTAINER`: the container's configuration and state."""

from __future__ import annotations

import argparse

from ocirt.cli.common import add_connection_args, call, guarded, print_json

HELP = "Show a container (as JSON)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("container", help="container id or name")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        print_json(call(args, "get", {"id": args.container}))
        return 0

    return guarded(body)
