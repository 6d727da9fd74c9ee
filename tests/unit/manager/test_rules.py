"""Stop options, exits and times: Kanto's messages and formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ocirt.errors import FailedPrecondition, InvalidArgument
from ocirt.manager.rules import (
    Exit,
    StopPlan,
    plan_stop,
    rfc3339_datetime,
    rfc3339nano,
    stop_timed_out,
)
from ocirt.manager.types import StopOptions


def test_plan_checks_the_timeout_first() -> None:
    with pytest.raises(InvalidArgument) as info:
        plan_stop(StopOptions(signal="bogus", timeout=-3))
    assert info.value.message == "the timeout = -3 shouldn't be negative"
    with pytest.raises(InvalidArgument, match=r"the timeout = -0.5 shouldn't"):
        plan_stop(StopOptions(timeout=-0.5))
    plan = plan_stop(StopOptions(signal="int", timeout=0, force=False))
    assert (plan.signal, plan.timeout, plan.force) == ("SIGINT", 0.0, False)
    # An empty signal means SIGTERM, as in Kanto.
    assert plan_stop(StopOptions(signal="")).signal == "SIGTERM"


def test_stop_timeout_error_is_kantos() -> None:
    error = stop_timed_out("abc", "SIGTERM")
    assert isinstance(error, FailedPrecondition)
    assert error.message == "could not stop container with ID = abc with SIGTERM"


def test_rfc3339nano_trims_zeros_like_go() -> None:
    assert rfc3339nano(1_714_557_600_123_456_789) == "2024-05-01T10:00:00.123456789Z"
    assert rfc3339nano(1_714_557_600_120_000_000) == "2024-05-01T10:00:00.12Z"
    assert rfc3339nano(1_714_557_600_000_000_000) == "2024-05-01T10:00:00Z"
    assert rfc3339nano().endswith("Z")


def test_datetimes_become_utc_text() -> None:
    plus2 = timezone(timedelta(hours=2))
    assert rfc3339_datetime(datetime(2024, 5, 1, 12, 0, 0, 500000, plus2)) == (
        "2024-05-01T10:00:00.5Z"
    )
    assert rfc3339_datetime(datetime(2024, 5, 1, 10, 0, 0)) == "2024-05-01T10:00:00Z"
    assert rfc3339_datetime(datetime(2024, 5, 1, 10, 0, 0, 1, UTC)) == (
        "2024-05-01T10:00:00.000001Z"
    )


def test_exits() -> None:
    oom = Exit.recorded(137, datetime(2024, 5, 1, 10, 0, tzinfo=UTC), True)
    assert (oom.exit_code, oom.oom_killed, oom.error) == (137, True, "OOM Killed")
    clean = Exit.recorded(0, datetime(2024, 5, 1, 10, 0, tzinfo=UTC), False)
    assert (clean.error, clean.finished_at) == ("", "2024-05-01T10:00:00Z")
    lost = Exit.lost()
    assert lost.exit_code == -1 and "monitor" in lost.error


def test_no_timeout_is_the_managers_default() -> None:
    # A plain stop (docs/kanto-compatibility.md decision 11): SIGTERM, the default timeout, then
    # SIGKILL.
    assert plan_stop(StopOptions(), 7.0) == StopPlan("SIGTERM", 7.0, True)
    assert plan_stop(StopOptions()).timeout == 30.0
