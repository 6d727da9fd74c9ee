"""The `ocirt` command: argument parsing and dispatch only.

Each command is a module `ocirt.cli.<module>` with `HELP: str`,
`add_arguments(parser)` and `run(args) -> int` (the exit code). Command modules import
their heavy dependencies inside `run`, so that `ocirt --help` stays cheap on small devices.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import cast

# command name -> module under ocirt.cli
COMMANDS: dict[str, str] = {
    "spec": "spec_cmd",
    "image": "image_cmd",
    "daemon": "daemon_cmd",
    "create": "create_cmd",
    "start": "start_cmd",
    "stop": "stop_cmd",
    "pause": "pause_cmd",
    "resume": "resume_cmd",
    "rename": "rename_cmd",
    "update": "update_cmd",
    "remove": "remove_cmd",
    "get": "get_cmd",
    "list": "list_cmd",
    "logs": "logs_cmd",
    "sysinfo": "sysinfo_cmd",
    "apply": "apply_cmd",
    "stats": "stats_cmd",
    "network": "network_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocirt", description="A small container manager.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"ocirt.cli.{module_name}")
        p = sub.add_parser(name, help=cast(str, module.HELP), description=cast(str, module.HELP))
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run = cast(Callable[[argparse.Namespace], int], args.run)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
