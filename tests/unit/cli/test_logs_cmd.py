"""`ocirt logs --since`: what each accepted form means, and the refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ocirt.cli.common import CliError
from ocirt.cli.logs_cmd import since_time
from ocirt.cli.main import command_parser
from ocirt.daemon.localapi import since_arg
from ocirt.errors import InvalidArgument

NOW = datetime(2024, 5, 6, 7, 8, 9, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        (" 2h ", timedelta(hours=2)),
    ],
)
def test_durations_count_back_from_now(text: str, back: timedelta) -> None:
    assert since_time(text, NOW) == NOW - back


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02t03:04:05z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        # RFC3339Nano, as `logs --json` prints entry times: cut to microseconds.
        ("2024-01-02T03:04:05.123456789Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        (
            "2024-01-02T03:04:05.5+02:00",
            datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=UTC),
        ),
        ("2024-01-02 03:04:05-01:30", datetime(2024, 1, 2, 4, 34, 5, tzinfo=UTC)),
        ("2024-01-02T03:04Z", datetime(2024, 1, 2, 3, 4, tzinfo=UTC)),
        ("2024-01-02Z", datetime(2024, 1, 2, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("1700000000.25", datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_absolute_times(text: str, expected: datetime) -> None:
    got = since_time(text, NOW)
    assert got.tzinfo is not None
    assert got == expected


@pytest.fixture
def berlin_winter() -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv("TZ", "CET-1")
    time.tzset()
    try:
        yield
    finally:
        mp.undo()
        time.tzset()


@pytest.mark.usefixtures("berlin_winter")
def test_a_time_without_zone_is_local_time() -> None:
    assert since_time("2024-01-02T03:04:05", NOW) == datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert since_time("2024-01-02", NOW) == datetime(2024, 1, 1, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "invalid --since 'yesterday': give an RFC3339 time"),
        ("", "invalid --since '': give an RFC3339 time"),
        ("10x", "invalid --since '10x': give an RFC3339 time"),
        ("-5m", "invalid --since '-5m': the duration must not be negative"),
        ("2024-02-30", "invalid --since time '2024-02-30'"),
        ("2024-01-02T25:00:00Z", "invalid --since time '2024-01-02T25:00:00Z'"),
        ("99999999999999999", "invalid --since '99999999999999999': out of range"),
        ("9999999999h", "invalid --since '9999999999h': out of range"),
    ],
)
def test_refusals_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(CliError) as caught:
        since_time(text, NOW)
    assert caught.value.message.startswith(message)
    assert caught.value.status == 400


def test_the_flag_is_parsed_and_sent_as_utc_rfc3339() -> None:
    args = command_parser("logs").parse_args(["--since", "1h30m", "--tail", "5", "web"])
    assert (args.since, args.tail, args.container) == ("1h30m", 5, "web")
    assert command_parser("logs").parse_args(["web"]).since is None
    # What the CLI sends must pass the daemon's check and mean the same instant.
    when = since_time("2024-01-02T03:04:05.123+05:00", NOW)
    wire = when.astimezone(UTC).isoformat()
    assert since_arg(wire) == when == datetime(2024, 1, 1, 22, 4, 5, 123000, tzinfo=UTC)
    assert since_arg(None) is None


@pytest.mark.parametrize(
    "value", ["10m", "2024-01-02", "2024-01-02T03:04:05", 1700000000, "", "2024-13-01T00:00:00Z"]
)
def test_the_daemon_takes_only_zoned_rfc3339(value: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        since_arg(value)
    assert caught.value.message.startswith("since must be an RFC3339 timestamp with a time zone")


def test_the_daemon_keeps_the_zone() -> None:
    got = since_arg("2024-01-02T03:04:05-02:00")
    assert got == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-2)))
