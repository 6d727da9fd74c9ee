"""`ocirt rename CONTAINER NEW_NAME` or `ocirt rename -n NAME NEW_NAME`."""

from __future__ import annotations

from ocirt.cli.common import (
    CliError,
    add_connection_args,
    call,
    guarded,
    print_json,
    selector,
)

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

HELP = "Rename a container."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument(
        "names", nargs="+", metavar="ARG", help="CONTAINER NEW_NAME, or NEW_NAME with -n"
    )
    parser.add_argument(
        "-n", "--name", dest="by_name", metavar="NAME", default="", help="container name"
    )


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        *refs, new_name = args.names
        if len(refs) > 1:
            raise CliError("rename takes a container and its new name")
        args.container = refs[0] if refs else None
        result = call(args, "rename", {**selector(args), "newName": new_name})
        if args.json:
            print_json(result)
        return 0

    return guarded(body)
