"""`ocirt logs [--tail N] [--follow] CONTAINER`: the container's json-file log."""

from __future__ import annotations

import argparse
import json
import sys

from ocirt.cli.common import add_connection_args, guarded

HELP = "Print a container's log."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("container", help="container id or name")
    parser.add_argument("--tail", type=int, default=100, help="last N lines (100; -1 = all)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ocirt.daemon.localapi import stream

    def body() -> int:
        params = {
            "id": args.container,
            "tail": None if args.tail < 0 else args.tail,
            "follow": args.follow,
        }
        for message in stream(Path(args.socket), "logs", params, timeout=None):
            entry = message.get("log")
            if not isinstance(entry, dict):
                continue
            if args.json:
                print(json.dumps(entry), flush=True)
                continue
            out = sys.stderr if entry.get("stream") == "stderr" else sys.stdout
            out.write(str(entry.get("log", "")))
            out.flush()
        return 0

    return guarded(body)
