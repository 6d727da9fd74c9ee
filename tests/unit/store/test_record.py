"""The runtime members of the persisted container: Kanto's state object."""

from __future__ import annotations

import pytest

from ocirt.config.state import Status
from ocirt.errors import ValidationError
from ocirt.manager.types import ContainerState
from ocirt.store.record import (
    RuntimeRecord,
    runtime_from_persisted,
    runtime_to_persisted,
    state_from_persisted,
    state_to_persisted,
)


@pytest.mark.parametrize("status", list(Status))
def test_state_round_trip_and_flags(status: Status) -> None:
    state = ContainerState(status, pid=7, exit_code=2, error="e", started_at="s", finished_at="f")
    raw = state_to_persisted(state)
    assert raw["status"] == status.value
    assert raw["running"] is (status in (Status.RUNNING, Status.PAUSED))
    assert raw["paused"] is (status is Status.PAUSED)
    assert raw["exited"] is (status is Status.EXITED)
    assert raw["dead"] is (status is Status.DEAD)
    assert state_from_persisted(raw) == state


def test_missing_members_take_kantos_zero_values() -> None:
    assert state_from_persisted(None) == ContainerState()
    assert state_from_persisted({"status": 3}) == ContainerState(Status.STOPPED)
    assert runtime_from_persisted({}) == RuntimeRecord()


@pytest.mark.parametrize(
    "raw",
    [
        {"state": []},
        {"state": {"status": "running"}},
        {"state": {"status": 99}},
        {"state": {"pid": True}},
        {"state": {"oomKilled": "yes"}},
        {"restart_count": -1},
        {"restart_count": 1.5},
        {"created": 5},
        {"manually_stopped": "no"},
    ],
)
def test_hostile_values_are_validation_errors(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        runtime_from_persisted(raw)


def test_runtime_round_trip() -> None:
    record = RuntimeRecord(
        ContainerState(Status.RUNNING, pid=10, started_at="2024-05-01T10:00:00Z"),
        created="2024-05-01T09:00:00Z",
        restart_count=3,
        manually_stopped=True,
        started_successfully_before=True,
    )
    assert runtime_from_persisted(runtime_to_persisted(record)) == record
