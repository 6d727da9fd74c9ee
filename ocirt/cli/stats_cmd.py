"""`ocirt stats [--no-stream] [--json] [CONTAINER...]`: live figures, like `docker stats`.

The daemon samples each container twice, a second apart, and answers with CPU %
(docker's: one busy core is 100 %), memory used / limit and %, net and block I/O and
pids. Without --no-stream the table is redrawn after every answer until Ctrl-C; with
--json each sample is one JSON line (one indented document with --no-stream).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ocirt.cli.common import add_connection_args, call, guarded, print_json, table

HELP = "Show containers' CPU, memory, network and block I/O use."
HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O",
           "BLOCK I/O", "PIDS"]  # fmt: skip
# Seconds between the daemon's two samples of one answer.
INTERVAL = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    parser.add_argument(
        "containers", nargs="*", metavar="CONTAINER",
        help="container ids or names (default: every running container)",
    )  # fmt: skip


def _binary(size: float) -> str:
    """docker's memory sizes: KiB, MiB, GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.4g}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1024
    raise AssertionError("unreachable")


def _decimal(size: float) -> str:
    """docker's I/O sizes: kB, MB, GB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.3g}{unit}" if unit != "B" else f"{int(size)}B"
        size /= 1000
    raise AssertionError("unreachable")


def _pair(a: Any, b: Any, fmt: Any) -> str:
    if a is None or b is None:
        return "--"
    return f"{fmt(a)} / {fmt(b)}"


def _percent(value: Any) -> str:
    return "--" if value is None else f"{value:.2f}%"


def row(stats: dict[str, Any]) -> list[str]:
    return [
        str(stats["id"])[:12],
        str(stats["name"]),
        _percent(stats["cpuPercent"]),
        _pair(stats["memoryUsage"], stats["memoryLimit"], _binary),
        _percent(stats["memoryPercent"]),
        _pair(stats["netInput"], stats["netOutput"], _decimal),
        _pair(stats["blockRead"], stats["blockWrite"], _decimal),
        "--" if stats["pids"] is None else str(stats["pids"]),
    ]


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        params: dict[str, Any] = {"interval": INTERVAL}
        if args.containers:
            params["ids"] = list(args.containers)
        redraw = sys.stdout.isatty()
        while True:
            rows = call(args, "stats", params)
            if args.json and args.no_stream:
                print_json(rows)
            elif args.json:
                print(json.dumps(rows), flush=True)
            else:
                if redraw and not args.no_stream:
                    print("\033[2J\033[H", end="")
                print(table(HEADERS, [row(r) for r in rows]), flush=True)
            if args.no_stream:
                return 0

    return guarded(body)
