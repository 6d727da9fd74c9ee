"""Values the manager hands to its callers (things front end, CLI, daemon). Pure: no I/O.

`ContainerView` is a consistent snapshot of one container; `Event` is one change,
delivered to subscribers in Kanto's order (docs/kanto-compatibility.md §2): CREATED, then STATE
changes, RENAMED, UPDATED, and REMOVED (after a STATE event with status DEAD).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.config.state import Status
from ocirt.store.record import ContainerState

__all__ = [
    "ContainerState",
    "ContainerView",
    "Event",
    "EventKind",
    "Status",
    "StopOptions",
]


@dataclass(frozen=True, slots=True)
class ContainerView:
    id: ContainerId
    name: str
    image_ref: str
    config: ContainerConfig
    created_at: str
    state: ContainerState = field(default_factory=ContainerState)
    restart_count: int = 0
    manually_stopped: bool = False
    started_successfully_before: bool = False


class EventKind(Enum):
    CREATED = "created"
    STATE = "state"
    RENAMED = "renamed"
    UPDATED = "updated"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    container: ContainerView


# Kanto's default stop timeout in seconds (`default_ctrs_stop_timeout`): the one place.
DEFAULT_STOP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class StopOptions:
    """`stop` / `stopWithOptions`; `StopOptions()` is a plain stop: SIGTERM, the manager's
    default timeout (None), then SIGKILL (docs/kanto-compatibility.md decision 11). The one place of
    that rule."""

    signal: str = "SIGTERM"
    timeout: float | None = None
    force: bool = True
