"""`ocirt rename CONTAINER NEW_NAME`."""

from __future__ import annotations

import argparse

from ocirt.cli.common import add_connection_args, call, guarded, print_json

HELP = "Rename a container."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("container", help="container id or name")
    parser.add_argument("name", help="the new name")


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        result = call(args, "rename", {"id": args.container, "name": args.name})
        if args.json:
            print_json(result)
        return 0

    return guarded(body)
