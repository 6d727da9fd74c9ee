"""`ocirt list [-q] [--filter status=|image=|exitcode=]`."""

from __future__ import annotations

import argparse
from typing import Any

from ocirt.cli.common import add_connection_args, call, guarded, print_json, table
from ocirt.errors import InvalidArgument

HELP = "List containers."
_KEYS = ("status", "image", "exitcode")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="print ids only")
    parser.add_argument(
        "--filter", action="append", default=[], metavar="KEY=VALUE",
        help="status=<state>, image=<reference>, exitcode=<n> (repeatable; all must match)",
    )  # fmt: skip


def parse_filters(items: list[str]) -> list[tuple[str, str]]:
    filters = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS:
            raise InvalidArgument(f"invalid filter {item!r}: use status=, image= or exitcode=")
        filters.append((key, value))
    return filters


def matches(container: dict[str, Any], filters: list[tuple[str, str]]) -> bool:
    state = container["state"]
    for key, value in filters:
        if key == "status" and state["status"].lower() != value.lower():
            return False
        if key == "image" and container["imageRef"] != value:
            return False
        if key == "exitcode" and str(state.get("exitCode", 0)) != value:
            return False
    return True


def _status(container: dict[str, Any]) -> str:
    """The state, with the health when the image has a check: `RUNNING (healthy)`."""
    health = container.get("health")
    status = str(container["state"]["status"])
    return f"{status} ({health['status']})" if isinstance(health, dict) else status


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        filters = parse_filters(args.filter)
        containers = [c for c in call(args, "list", {}) if matches(c, filters)]
        if args.json:
            print_json(containers)
        elif args.quiet:
            for c in containers:
                print(c["id"])
        else:
            rows = [
                [c["id"], c["name"], c["imageRef"], _status(c),
                 str(c["state"].get("exitCode", 0))]
                for c in containers
            ]  # fmt: skip
            print(table(["ID", "NAME", "IMAGE", "STATUS", "EXIT CODE"], rows))
        return 0

    return guarded(body)
