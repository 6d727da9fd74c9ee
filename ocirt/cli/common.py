"""Shared pieces of the container commands: the daemon connection, output, errors.

No I/O of its own beyond stdout/stderr; the socket lives in `ocirt.cli.client`,
imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ocirt.errors import OcirtError

DEFAULT_SOCKET = "/var/run/container-management/ocirt.sock"


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--socket",
        default=os.environ.get("OCIRT_SOCKET", DEFAULT_SOCKET),
        help="the daemon's local API socket (default: %(default)s, or $OCIRT_SOCKET)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the daemon (30)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def call(args: argparse.Namespace, op: str, params: dict[str, Any]) -> Any:
    from ocirt.cli.client import request

    # An operation may legitimately take longer than the connect timeout (a stop with
    # a grace period, a pull): only connecting is bounded by --timeout.
    return request(
        Path(args.socket),
        op,
        params,
        timeout=None if op != "sysinfo" else args.timeout,
        connect_timeout=args.timeout,
    )


def guarded(body: Callable[[], int]) -> int:
    """Run a command body; an ocirt error becomes `Error: ...` on stderr and exit 1."""
    try:
        return body()
    except OcirtError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(headers), *rows]
    ]
    return "\n".join(lines)


def container_command(
    op: str, help_text: str
) -> tuple[str, Callable[..., None], Callable[..., int]]:
    """HELP, add_arguments and run of a command that takes one container and no options."""

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_connection_args(parser)
        parser.add_argument("container", help="container id or name")

    def run(args: argparse.Namespace) -> int:
        def body() -> int:
            result = call(args, op, {"id": args.container})
            if args.json:
                print_json(result)
            return 0

        return guarded(body)

    return help_text, add_arguments, run
