"""`ocirt remove [-f [-t DURATION]] CONTAINER... | -n NAME`."""

from __future__ import annotations

import sys

from ocirt.cli.common import (
    ID_AND_NAME,
    NO_CONTAINER,
    CliError,
    add_connection_args,
    call,
    guarded,
    print_json,
    seconds_arg,
)

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

HELP = "Remove containers (-f also stops running ones)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument(
        "containers", nargs="*", metavar="container", help="container ID, ID prefix or name"
    )
    parser.add_argument(
        "-n", "--name", dest="by_name", metavar="NAME", default="", help="container name"
    )
    parser.add_argument("-f", "--force", action="store_true", help="stop it first if running")
    parser.add_argument(
        "-t", "--time", dest="grace", metavar="DURATION", type=seconds_arg, default=None,
        help="with -f: stop gracefully within this time (a Go duration or seconds) "
        "instead of SIGKILL at once",
    )  # fmt: skip


def selectors(args: argparse.Namespace) -> list[dict[str, str]]:
    if args.containers and args.by_name:
        raise CliError(ID_AND_NAME)
    if args.by_name:
        return [{"name": args.by_name}]
    if not args.containers:
        raise CliError(NO_CONTAINER)
    return [{"id": ref} for ref in args.containers]


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.grace is not None and not args.force:
            raise CliError("-t/--time applies to a forced remove only: add -f")
        targets = selectors(args)
        status = 0
        removed = []
        for target in targets:
            params: dict[str, Any] = {**target, "force": args.force}
            if args.grace is not None:
                params["timeout"] = args.grace
            try:
                removed.append(call(args, "remove", params))
            except CliError as exc:
                # As kanto-cm: every container is tried, the errors are reported together.
                print(f"Error: {exc.message}", file=sys.stderr)
                status = 1
        if args.json:
            print_json(removed)
        return status

    return guarded(body)
