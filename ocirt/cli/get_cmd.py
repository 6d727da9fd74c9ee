"""`ocirt get [--kanto] CONTAINER | -n NAME`: the container's configuration and state."""

from __future__ import annotations

from ocirt.cli.common import (
    add_connection_args,
    add_container_arg,
    call,
    guarded,
    print_json,
    selector,
)

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

HELP = "Show a container (as JSON)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    add_container_arg(parser)
    parser.add_argument(
        "--kanto",
        action="store_true",
        help="print kanto-cm's model (snake_case, state.status a number, 3-space indent)",
    )


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        if args.kanto:
            # kanto-cm prints its model with json.MarshalIndent(ctr, "", "   ").
            print_json(call(args, "get", {**selector(args), "format": "kanto"}), indent=3)
        else:
            print_json(call(args, "get", selector(args)))
        return 0

    return guarded(body)
