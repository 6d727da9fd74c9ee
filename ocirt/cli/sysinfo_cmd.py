"""`ocirt sysinfo`: what the daemon runs with."""

from __future__ import annotations

from ocirt.cli.common import add_connection_args, call, guarded, print_json

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

HELP = "Show information about the daemon."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        info = call(args, "sysinfo", {})
        if args.json:
            print_json(info)
        else:
            for key, value in info.items():
                print(f"{key}: {value}")
        return 0

    return guarded(body)
