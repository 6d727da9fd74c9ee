"""`ocirt list [-n NAME] [-q] [--filter status=|image=|exitcode=]`, as kanto-cm prints it.

`kanto_table` (pure) renders Kanto's table: Go's text/tabwriter with its Debug flag
(`containerm/cli/cli_command_ctrs_list.go`), byte for byte.
"""

from __future__ import annotations

from ocirt.cli.common import CliError, add_connection_args, call, guarded, print_json

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

HELP = "List containers."

KANTO_COLUMNS = (
    ("ID", 37),
    ("Name", 37),
    ("Image", 60),
    ("Status", 10),
    ("Finished At", 32),
    ("Exit Code", 10),
)
# The second header line: Kanto's dashes (its Finished At dashes are 30, not 32).
KANTO_RULE = ("-" * 37, "-" * 37, "-" * 60, "-" * 10, "-" * 30, "-" * 10)
_TABWIDTH = 8
_MINWIDTH = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    parser.add_argument("-n", "--name", default="", help="only the container with this name")
    parser.add_argument("-q", "--quiet", action="store_true", help="print the IDs only")
    parser.add_argument(
        "--filter", action="append", default=[], metavar="KEY=VALUE",
        help="status=<state>, image=<reference>, exitcode=<n> (repeatable, or comma-separated)",
    )  # fmt: skip


def parse_filters(items: Sequence[str]) -> tuple[str, str, int | None]:
    """kanto-cm's filters: (status, image, exitcode); the last of a key wins, as there."""
    status = image = ""
    exit_code: int | None = None
    for item in (part for text in items for part in text.split(",")):
        if item.startswith("status="):
            status = item[len("status=") :]
        elif item.startswith("image="):
            image = item[len("image=") :]
        elif item.startswith("exitcode="):
            text = item[len("exitcode=") :]
            try:
                exit_code = int(text)
            except ValueError:
                raise CliError(f'strconv.Atoi: parsing "{text}": invalid syntax') from None
        else:
            raise CliError(f"no filter: {item.split('=')[0]}")
    return status, image, exit_code


def matches(container: dict[str, Any], filters: tuple[str, str, int | None]) -> bool:
    status, image, exit_code = filters
    state = container["state"]
    if status and state["status"].lower() != status.lower():
        return False
    if image and container["imageRef"].lower() != image.lower():
        return False
    return exit_code is None or state.get("exitCode", 0) == exit_code


def _tab_cell(text: str, width: int) -> str:
    # tabwriter with '\t' as padding: the column is rounded up to the tab width and
    # filled with as many tabs as it takes to get there.
    cell_width = (width + _TABWIDTH - 1) // _TABWIDTH * _TABWIDTH
    return text + "\t" * ((cell_width - len(text) + _TABWIDTH - 1) // _TABWIDTH)


def kanto_table(rows: Sequence[Sequence[str]]) -> str:
    """Kanto's list table: a blank line, header, dashes, one line per container, a blank
    line; cells padded as `%-Ns`, columns ended by tabs and a '|'."""
    header = [text for text, _ in KANTO_COLUMNS]
    lines = [
        [text.ljust(width) for text, (_, width) in zip(row, KANTO_COLUMNS, strict=True)]
        for row in [header, KANTO_RULE, *rows]
    ]
    widths = [max(_MINWIDTH, *(len(line[i]) for line in lines)) for i in range(len(KANTO_COLUMNS))]
    out = [""]
    for line in lines:
        out.append("|".join(_tab_cell(c, w) for c, w in zip(line, widths, strict=True)) + "|")
    out.append("")
    return "\n".join(out) + "\n"


def kanto_status(status: str) -> str:
    """Kanto's Status.String(): `Running` for ocirt's RUNNING."""
    return status[:1].upper() + status[1:].lower()


def _status(container: dict[str, Any]) -> str:
    """Kanto's status, with the health when the image has a check: `Running (healthy)`."""
    health = container.get("health")
    status = kanto_status(str(container["state"]["status"]))
    return f"{status} ({health['status']})" if isinstance(health, dict) else status


def run(args: argparse.Namespace) -> int:
    def body() -> int:
        filters = parse_filters(args.filter)
        containers = [
            c
            for c in call(args, "list", {})
            if matches(c, filters) and (not args.name or c["name"] == args.name)
        ]
        if args.json:
            print_json(containers)
        elif args.quiet:
            if containers:
                print(" ".join(c["id"] for c in containers))
        elif not containers:
            print("No containers found.")
        else:
            rows = [
                (
                    c["id"],
                    c["name"],
                    c["imageRef"],
                    _status(c),
                    str(c["state"].get("finishedAt", "")),
                    str(c["state"].get("exitCode", 0)),
                )
                for c in containers
            ]
            print(kanto_table(rows), end="")
        return 0

    return guarded(body)
