"""Container states and which operation each allows: one pure table. No I/O.

States and their numbers are Kanto's (`containerm/containers/types`), so persisted
definitions move between Kanto and ocirt unchanged. Messages are Kanto's exact texts
(docs/kanto-compatibility.md §2), including the Go title-case state names and trailing spaces.
"""

from __future__ import annotations

from enum import Enum

from ocirt.errors import FailedPrecondition


class Status(Enum):
    CREATING = 0
    CREATED = 1
    RUNNING = 2
    STOPPED = 3
    PAUSED = 4
    EXITED = 5
    DEAD = 6
    UNKNOWN = 7

    @property
    def title(self) -> str:
        """Go's String() of the status, as Kanto prints it in messages."""
        return self.name.capitalize()

    @property
    def is_active(self) -> bool:
        """The container has processes (running or frozen)."""
        return self in (Status.RUNNING, Status.PAUSED)


class Operation(Enum):
    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"
    RENAME = "rename"
    UPDATE = "update"
    REMOVE = "remove"
    REMOVE_FORCE = "remove-force"


_STARTABLE = frozenset({Status.CREATED, Status.STOPPED, Status.EXITED, Status.UNKNOWN})
_ANY_BUT_TRANSIENT = frozenset(Status) - {Status.CREATING, Status.DEAD}

# operation -> the states in which it is allowed
ALLOWED: dict[Operation, frozenset[Status]] = {
    Operation.START: _STARTABLE,
    Operation.STOP: frozenset({Status.RUNNING, Status.PAUSED}),
    Operation.PAUSE: frozenset({Status.RUNNING}),
    Operation.RESUME: frozenset({Status.PAUSED}),
    Operation.RENAME: _ANY_BUT_TRANSIENT,
    Operation.UPDATE: _ANY_BUT_TRANSIENT,
    Operation.REMOVE: frozenset(Status) - {Status.RUNNING, Status.PAUSED},
    Operation.REMOVE_FORCE: frozenset(Status),
}


def allows(status: Status, operation: Operation) -> bool:
    return status in ALLOWED[operation]


def refusal(container_id: str, status: Status, operation: Operation) -> str:
    """Kanto's message for `operation` refused in `status`."""
    cid = container_id
    if operation is Operation.START:
        if status is Status.RUNNING:
            return f"the container with id = {cid} is already running"
        if status is Status.PAUSED:
            return (
                f"the container with id = {cid} is paused - cannot start it - "
                "try unpausing it instead"
            )
        if status is Status.DEAD:
            return f"the container with id = {cid} is dead - cannot start it"
        return f"the container with id = {cid} is {status.title.lower()} - cannot start it"
    if operation is Operation.STOP:
        return f"cannot perform stop operation for container: {cid}, with state: {status.title}"
    if operation is Operation.PAUSE:
        return f"container with id = {cid} is not running - current status is {status.title}"
    if operation is Operation.RESUME:
        return f"container id = {cid} is not paused - cannot unpause it "
    if operation is Operation.REMOVE:
        return (
            f"container with id = {cid} is not stopped - must set the force flag to true "
            "to remove it"
        )
    return f"cannot {operation.value} container with id = {cid} in state {status.title}"


def check(container_id: str, status: Status, operation: Operation) -> None:
    """Raise FailedPrecondition with Kanto's message when `operation` is not allowed."""
    if not allows(status, operation):
        raise FailedPrecondition(refusal(container_id, status, operation))
