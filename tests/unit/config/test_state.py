"""The state table: every operation in every state, allowed or refused with Kanto's text."""

from __future__ import annotations

import pytest

from ocirt.config.state import ALLOWED, Operation, Status, allows, check, refusal
from ocirt.errors import FailedPrecondition

CID = "c0ffee"

# Written out by hand from docs/kanto-compatibility.md §2 and containerm/mgr, not derived from
# ALLOWED.
EXPECTED_ALLOWED: dict[Operation, set[Status]] = {
    Operation.START: {Status.CREATED, Status.STOPPED, Status.EXITED, Status.UNKNOWN},
    Operation.STOP: {Status.RUNNING, Status.PAUSED},
    Operation.PAUSE: {Status.RUNNING},
    Operation.RESUME: {Status.PAUSED},
    Operation.RENAME: set(Status) - {Status.CREATING, Status.DEAD},
    Operation.UPDATE: set(Status) - {Status.CREATING, Status.DEAD},
    Operation.REMOVE: set(Status) - {Status.RUNNING, Status.PAUSED},
    Operation.REMOVE_FORCE: set(Status),
}


def test_status_numbers_are_kantos() -> None:
    assert [(s.name, s.value) for s in Status] == [
        ("CREATING", 0),
        ("CREATED", 1),
        ("RUNNING", 2),
        ("STOPPED", 3),
        ("PAUSED", 4),
        ("EXITED", 5),
        ("DEAD", 6),
        ("UNKNOWN", 7),
    ]


@pytest.mark.parametrize("operation", list(Operation))
@pytest.mark.parametrize("status", list(Status))
def test_every_operation_in_every_state(operation: Operation, status: Status) -> None:
    expected = status in EXPECTED_ALLOWED[operation]
    assert allows(status, operation) is expected
    assert (status in ALLOWED[operation]) is expected
    if expected:
        check(CID, status, operation)
    else:
        with pytest.raises(FailedPrecondition) as info:
            check(CID, status, operation)
        assert info.value.message == refusal(CID, status, operation)
        assert info.value.status == 500


@pytest.mark.parametrize(
    ("status", "operation", "message"),
    [
        (Status.RUNNING, Operation.START, f"the container with id = {CID} is already running"),
        (
            Status.PAUSED,
            Operation.START,
            f"the container with id = {CID} is paused - cannot start it - try unpausing it instead",
        ),
        (Status.DEAD, Operation.START, f"the container with id = {CID} is dead - cannot start it"),
        (
            Status.CREATED,
            Operation.STOP,
            f"cannot perform stop operation for container: {CID}, with state: Created",
        ),
        (
            Status.EXITED,
            Operation.STOP,
            f"cannot perform stop operation for container: {CID}, with state: Exited",
        ),
        (
            Status.STOPPED,
            Operation.PAUSE,
            f"container with id = {CID} is not running - current status is Stopped",
        ),
        (
            Status.PAUSED,
            Operation.PAUSE,
            f"container with id = {CID} is not running - current status is Paused",
        ),
        (
            Status.RUNNING,
            Operation.RESUME,
            f"container id = {CID} is not paused - cannot unpause it ",
        ),
        (
            Status.RUNNING,
            Operation.REMOVE,
            f"container with id = {CID} is not stopped - must set the force flag to true "
            "to remove it",
        ),
    ],
)
def test_kanto_messages(status: Status, operation: Operation, message: str) -> None:
    with pytest.raises(FailedPrecondition) as info:
        check(CID, status, operation)
    assert info.value.message == message


def test_active_states() -> None:
    assert {s for s in Status if s.is_active} == {Status.RUNNING, Status.PAUSED}
