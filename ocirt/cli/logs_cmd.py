"""`ocirt logs [--tail N] [--since WHEN] [--follow] CONTAINER`: the container's json-file
log. `since_time` (pure) reads --since; printing the streamed entries is the only I/O.
"""

from __future__ import annotations

import sys

from ocirt.cli.common import (
    CliError,
    add_connection_args,
    add_container_arg,
    go_duration,
    guarded,
    selector,
)

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from datetime import datetime

HELP = "Print a container's log."

# docker logs --since: Unix seconds, a date or date-time (local time without a zone).
_UNIX = r"(\d+)(?:\.(\d{1,9}))?"
_TIMESTAMP = r"(\d{4}-\d\d-\d\d)(?:[Tt ](\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?))?([Zz]|[+-]\d\d:\d\d)?"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_connection_args(parser)
    add_container_arg(parser)
    parser.add_argument(
        "-t", "--tail", type=int, default=100, help="last N lines (100, as kanto-cm; -1 = all)"
    )
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help="only entries from WHEN on: an RFC3339 time (2024-01-02T15:04:05Z), "
        "Unix seconds, or a duration back from now (10m, 1h30m, 45s)",
    )
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")


def since_time(text: str, now: datetime) -> datetime:
    """The instant --since names, as `docker logs --since` reads it. Raises CliError."""
    import re
    from datetime import UTC, datetime, timedelta

    value = text.strip()
    unix = re.fullmatch(_UNIX, value)
    if unix:
        seconds, fraction = unix.groups()
        micros = int((fraction or "0").ljust(9, "0")[:6])
        try:
            return datetime.fromtimestamp(int(seconds), UTC) + timedelta(microseconds=micros)
        except (OverflowError, OSError, ValueError):
            raise CliError(f"invalid --since {text!r}: out of range") from None
    stamp = re.fullmatch(_TIMESTAMP, value)
    if stamp:
        day, clock, zone = stamp.groups()
        zone = "+00:00" if zone in ("Z", "z") else zone
        try:
            when = datetime.fromisoformat(f"{day}T{clock or '00:00'}{zone or ''}")
        except ValueError:
            raise CliError(f"invalid --since time {text!r}") from None
        # Docker reads a time without a zone as local time.
        return when if when.tzinfo is not None else when.astimezone()
    try:
        back = go_duration(value)
    except CliError:
        raise CliError(
            f"invalid --since {text!r}: give an RFC3339 time (2024-01-02T15:04:05Z), "
            "Unix seconds, or a duration such as 10m, 1h30m or 45s"
        ) from None
    if back < 0:
        raise CliError(f"invalid --since {text!r}: the duration must not be negative")
    try:
        return now - timedelta(seconds=back)
    except OverflowError:
        raise CliError(f"invalid --since {text!r}: out of range") from None


def run(args: argparse.Namespace) -> int:
    from ocirt.cli.client import stream

    def body() -> int:
        params: dict[str, object] = {
            **selector(args),
            "tail": None if args.tail < 0 else args.tail,
            "follow": args.follow,
        }
        if args.since is not None:
            from datetime import UTC, datetime

            since = since_time(args.since, datetime.now(UTC))
            params["since"] = since.astimezone(UTC).isoformat()
        for message in stream(
            args.socket, "logs", params, timeout=None, connect_timeout=args.timeout
        ):
            entry = message.get("log")
            if not isinstance(entry, dict):
                continue
            if args.json:
                import json

                print(json.dumps(entry), flush=True)
                continue
            out = sys.stderr if entry.get("stream") == "stderr" else sys.stdout
            out.write(str(entry.get("log", "")))
            out.flush()
        return 0

    return guarded(body)
