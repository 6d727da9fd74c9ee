"""`ocirt remove [-f] CONTAINER...`."""

from __future__ import annotations

import argparse
import sys

from ocirt.cli.common import add_connection_args, call, print_json
from ocirt.errors import OcirtError

HELP = "Remove containers (-f also stops running ones)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("containers", nargs="+", metavar="container", help="container id or name")
    parser.add_argument("-f", "--force", action="store_true", help="stop it first if running")


def run(args: argparse.Namespace) -> int:
    status = 0
    removed = []
    for ref in args.containers:
        try:
            removed.append(call(args, "remove", {"id": ref, "force": args.force}))
        except OcirtError as exc:
            print(f"Error: {exc.message}", file=sys.stderr)
            status = 1
    if args.json:
        print_json(removed)
    return status
