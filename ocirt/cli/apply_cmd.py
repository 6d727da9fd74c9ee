"""`ocirt apply DESIRED.json`: converge the device to a desired state (update agent)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ocirt.cli.common import add_connection_args, call, guarded, print_json
from ocirt.errors import InvalidArgument

HELP = (
    "Apply a desired state (Kanto's update agent format) autonomously: download, update, "
    "activate and clean up, rolling back when activation fails."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument(
        "file", help="desired state JSON (or an envelope with a payload); - = stdin"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="return at once with the activity id"
    )


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        try:
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
            value = json.loads(text)
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"cannot read the desired state {args.file}: {exc}") from exc
        result = call(args, "apply", {"value": value, "wait": not args.no_wait})
        if args.json:
            print_json(result)
        else:
            for feedback in result.get("feedback", []):
                line = feedback.get("status", "")
                if feedback.get("baseline"):
                    line += f" [{feedback['baseline']}]"
                if feedback.get("message"):
                    line += f": {feedback['message']}"
                print(line)
            if args.no_wait:
                print(result.get("activityId", ""))
        return 0 if args.no_wait or result.get("status") == "COMPLETED" else 1

    return guarded(body)
