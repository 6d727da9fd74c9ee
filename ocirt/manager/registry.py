"""The manager's table of containers: one `Slot` per container, its lock, the names, and
persistence of a slot's record. Does I/O (through the store port).

A registry lock guards the id -> slot table and the names; each slot has its own lock,
held for a whole operation, so operations on one container are serialised and operations
on different containers run in parallel.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from ocirt.atomic import Durability
from ocirt.config.model import ContainerDefinition, ContainerId
from ocirt.config.state import Operation, check
from ocirt.errors import NotFound, OcirtError
from ocirt.manager.ports import ContainerStore
from ocirt.manager.types import ContainerState, ContainerView
from ocirt.store.containers import ContainerPaths, StoredContainer

SHUTTING_DOWN = "the container manager is shutting down"


class Slot:
    """One container's mutable slot in the manager; touched only under `lock`."""

    __slots__ = (
        "backoff",
        "exited",
        "lock",
        "removed",
        "run_started",
        "stored",
        "timer",
        "timer_token",
    )

    def __init__(self, stored: StoredContainer) -> None:
        self.lock = threading.RLock()
        self.stored = stored
        self.removed = False
        # Set (without the lock) by the exit listener; a waiting stop wakes on it.
        self.exited = threading.Event()
        self.timer: threading.Timer | None = None
        self.timer_token = 0
        self.backoff = 0.0
        self.run_started = 0.0

    @property
    def id(self) -> ContainerId:
        return self.stored.definition.id

    @property
    def state(self) -> ContainerState:
        return self.stored.runtime.state

    def view(self) -> ContainerView:
        d, r = self.stored.definition, self.stored.runtime
        return ContainerView(
            id=d.id,
            name=d.name,
            image_ref=d.image_ref,
            config=d.config,
            created_at=r.created,
            state=r.state,
            restart_count=r.restart_count,
            manually_stopped=r.manually_stopped,
            started_successfully_before=r.started_successfully_before,
        )


def not_found(container_id: str) -> NotFound:
    return NotFound(f"no such container with id = {container_id} exists")


class Registry:
    """The id -> slot table, and the store the slots' records are saved in."""

    def __init__(self, store: ContainerStore) -> None:
        self.store = store
        self.lock = threading.Lock()
        self._slots: dict[str, Slot] = {}
        self.closed = False

    # ------------------------------------------------------------------ table

    def get(self, container_id: str) -> Slot:
        with self.lock:
            slot = self._slots.get(container_id)
        if slot is None:
            raise not_found(container_id)
        return slot

    def find(self, container_id: str) -> Slot | None:
        with self.lock:
            return self._slots.get(container_id)

    def all(self) -> list[Slot]:
        with self.lock:
            return list(self._slots.values())

    def active(self) -> list[Slot]:
        with self.lock:
            return [s for s in self._slots.values() if s.state.status.is_active]

    def add(self, slot: Slot) -> None:
        """Add a slot; the caller holds `lock` when the name must be checked with it."""
        self._slots[slot.id] = slot

    def discard(self, container_id: str) -> None:
        with self.lock:
            self._slots.pop(container_id, None)

    def taken(self, container_id: str) -> bool:
        """Whether a container has this id; the caller holds `lock`."""
        return container_id in self._slots

    def names(self, exclude: str | None = None) -> Sequence[str]:
        """The names in use; the caller holds `lock`."""
        return [
            s.stored.definition.name
            for cid, s in self._slots.items()
            if cid != exclude and not s.removed
        ]

    # ------------------------------------------------------------------ locking

    def check_open(self) -> None:
        if self.closed:
            raise OcirtError(SHUTTING_DOWN)

    def live(self, slot: Slot) -> None:
        if slot.removed:
            raise not_found(slot.id)
        self.check_open()

    @contextlib.contextmanager
    def operate(
        self, container_id: str, operation: Operation, settle: Callable[[Slot], None]
    ) -> Iterator[Slot]:
        """The container's slot, locked for the whole operation, settled (an exit that
        happened is applied) and with `operation` allowed in its state (else Kanto's
        refusal)."""
        slot = self.get(container_id)
        with slot.lock:
            self.live(slot)
            settle(slot)
            check(slot.id, slot.state.status, operation)
            yield slot

    # ------------------------------------------------------------------ records

    def paths(self, definition: ContainerDefinition) -> ContainerPaths:
        return self.store.paths(definition.id, definition.config.log.root_dir)

    def save(
        self,
        slot: Slot,
        *,
        definition: ContainerDefinition | None = None,
        state: ContainerState | None = None,
        restart_count: int | None = None,
        manually_stopped: bool | None = None,
        started_successfully_before: bool | None = None,
        durability: Durability = Durability.FULL,
    ) -> None:
        """Persist the slot's record with these changes, then keep it in the slot."""
        runtime = slot.stored.runtime
        if state is not None:
            runtime = replace(runtime, state=state)
        if restart_count is not None:
            runtime = replace(runtime, restart_count=restart_count)
        if manually_stopped is not None:
            runtime = replace(runtime, manually_stopped=manually_stopped)
        if started_successfully_before is not None:
            runtime = replace(runtime, started_successfully_before=started_successfully_before)
        stored = replace(
            slot.stored, definition=definition or slot.stored.definition, runtime=runtime
        )
        self.store.save(stored, durability)
        slot.stored = stored
