"""The runtime members of Kanto's persisted container: state, created, counters. Pure.

`ocirt.config` owns the definition members of `<home>/containers/<id>/config.json`
(docs/kanto-compatibility.md §3); this module owns the rest, in Kanto's snake_case with its
`state.status` numbers, so a device that moves from Kanto keeps its containers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ocirt.config.state import Status
from ocirt.errors import ValidationError

# Members of the persisted file that this module reads and writes.
RUNTIME_KEYS = (
    "state",
    "created",
    "restart_count",
    "manually_stopped",
    "started_successfully_before",
)


@dataclass(frozen=True, slots=True)
class ContainerState:
    """Kanto's `state`: times are RFC3339Nano UTC text, "" when unset; pid -1 when none.

    Defined here, below the manager, so the store needs no upward import;
    `ocirt.manager.types` re-exports it.
    """

    status: Status = Status.CREATING
    pid: int = -1
    exit_code: int = 0
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    oom_killed: bool = False


@dataclass(frozen=True, slots=True)
class RuntimeRecord:
    """What the manager learnt about a container, as opposed to what a client asked."""

    state: ContainerState = field(default_factory=ContainerState)
    created: str = ""
    restart_count: int = 0
    manually_stopped: bool = False
    started_successfully_before: bool = False


def state_to_persisted(state: ContainerState) -> dict[str, Any]:
    status = state.status
    return {
        "pid": state.pid,
        "started_at": state.started_at,
        "error": state.error,
        "exit_code": state.exit_code,
        "finished_at": state.finished_at,
        "exited": status is Status.EXITED,
        "dead": status is Status.DEAD,
        "restarting": False,
        "paused": status is Status.PAUSED,
        "running": status.is_active,
        "oomKilled": state.oom_killed,
        "status": status.value,
    }


def _get(raw: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = raw.get(key, default)
    if value is None:
        return default
    # bool is an int in Python; a JSON true is no number of ours.
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValidationError(f"invalid persisted container: {key} must be a number")
    if kind is not int and not isinstance(value, kind):
        raise ValidationError(f"invalid persisted container: {key} must be a {kind.__name__}")
    return value


def _status(raw: Mapping[str, Any]) -> Status:
    number = _get(raw, "status", int, Status.UNKNOWN.value)
    try:
        return Status(number)
    except ValueError as exc:
        raise ValidationError(f"invalid persisted container: unknown status {number}") from exc


def state_from_persisted(raw: object) -> ContainerState:
    if raw is None:
        return ContainerState()
    if not isinstance(raw, dict):
        raise ValidationError("invalid persisted container: state must be an object")
    return ContainerState(
        status=_status(raw),
        pid=_get(raw, "pid", int, -1),
        exit_code=_get(raw, "exit_code", int, 0),
        error=_get(raw, "error", str, ""),
        started_at=_get(raw, "started_at", str, ""),
        finished_at=_get(raw, "finished_at", str, ""),
        oom_killed=_get(raw, "oomKilled", bool, False),
    )


def runtime_to_persisted(record: RuntimeRecord) -> dict[str, Any]:
    return {
        "state": state_to_persisted(record.state),
        "created": record.created,
        "restart_count": record.restart_count,
        "manually_stopped": record.manually_stopped,
        "started_successfully_before": record.started_successfully_before,
    }


def runtime_from_persisted(raw: Mapping[str, Any]) -> RuntimeRecord:
    count = _get(raw, "restart_count", int, 0)
    if count < 0:
        raise ValidationError("invalid persisted container: restart_count is negative")
    return RuntimeRecord(
        state=state_from_persisted(raw.get("state")),
        created=_get(raw, "created", str, ""),
        restart_count=count,
        manually_stopped=_get(raw, "manually_stopped", bool, False),
        started_successfully_before=_get(raw, "started_successfully_before", bool, False),
    )
