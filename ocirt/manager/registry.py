"""The manager's table of containers: one `Slot` per container, its lock, the names, and
persistence of a slot's record. Does I/O (through the store port).

A registry lock guards the id -> slot table and the names; each slot has its own lock,
held for a whole operation, so operations on one container are serialised and operations
on different containers run in parallel.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

from ocirt.atomic import Durability
from ocirt.config.model import ContainerConfig, ContainerDefinition, ContainerId
from ocirt.config.state import Operation, Status, check
from ocirt.errors import FailedPrecondition, NotFound, OcirtError
from ocirt.manager.ports import ContainerStore
from ocirt.manager.types import ContainerState, ContainerView
from ocirt.store.containers import ContainerPaths, StoredContainer
from ocirt.store.record import RuntimeRecord

SHUTTING_DOWN = "the container manager is shutting down"

_log = logging.getLogger(__name__)

# A record that cannot be written for want of space is kept in memory and written again
# later (`Registry.write_pending`): stopping or removing the container that filled the
# disk must not need space.
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class Slot:
    """One container's mutable slot in the manager; touched only under `lock`."""

    __slots__ = (
        "backoff",
        "damage",
        "exited",
        "lock",
        "removed",
        "run_started",
        "stored",
        "timer",
        "timer_token",
        "unsaved",
        "unsettled",
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
        # Why the container's record cannot be read ("" when it can): such a container
        # is shown and can be removed, nothing else; its record is never written.
        self.damage = ""
        # The record in memory is newer than the one on disk (a full disk refused it).
        self.unsaved = False
        # Created with its directories not yet fsynced (a create with start): the next
        # save makes the whole container durable (`ContainerStore.save(settle=True)`).
        self.unsettled = False

    @classmethod
    def damaged(cls, container_id: str, reason: str, pid: int = -1) -> Slot:
        """The slot of a container whose record is missing or unreadable: all that is
        known is its id (and, from the runtime, a pid); its state is UNKNOWN and says
        why. Its definition is Kanto's defaults, so its json.log can still be read."""
        definition = ContainerDefinition(
            ContainerId(container_id), container_id, "", ContainerConfig()
        )
        state = ContainerState(Status.UNKNOWN, pid=pid, error=f"damaged: {reason}")
        slot = cls(StoredContainer(definition, RuntimeRecord(state=state)))
        slot.damage = reason
        return slot

    @property
    def id(self) -> ContainerId:
        return self.stored.definition.id

    @property
    def state(self) -> ContainerState:
        return self.stored.runtime.state

    @property
    def label(self) -> str:
        """How the daemon's log names the container: its id, and its name when it has one."""
        d = self.stored.definition
        return d.id if d.name in ("", d.id) else f"{d.id} ({d.name})"

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


def damaged(container_id: str, reason: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the container with id = {container_id} is damaged ({reason}) - it can only be removed"
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

    def live(self, slot: Slot, operation: Operation | None = None) -> None:
        """The slot can take `operation` (None: a change of its record): not removed,
        not damaged unless the operation is a remove, and the manager still serves."""
        if slot.removed:
            raise not_found(slot.id)
        if slot.damage and operation not in (Operation.REMOVE, Operation.REMOVE_FORCE):
            raise damaged(slot.id, slot.damage)
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
            self.live(slot, operation)
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
        required: bool = False,
    ) -> None:
        """Persist the slot's record with these changes, then keep it in the slot.

        What has happened already (a stop, an exit, a remove) must be recorded even on
        a full disk: then the record is kept in memory, marked `unsaved` and written by
        `write_pending` once there is space. A change a client asks for that has not
        happened yet (create, rename, update) is `required`: a full disk refuses it."""
        if slot.damage:
            # What is on disk is all there is of its definition: never overwrite it.
            raise damaged(slot.id, slot.damage)
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
        try:
            self.store.save(stored, durability, settle=slot.unsettled)
        except OSError as exc:
            if required or exc.errno not in _NO_SPACE:
                raise
            if not slot.unsaved:
                _log.warning(
                    "container %s: cannot write its record (%s); it is kept in memory and"
                    " written once there is space",
                    slot.label,
                    exc.strerror,
                )
            slot.unsaved = True
        else:
            slot.unsaved = slot.unsettled = False
        slot.stored = stored

    def pending(self) -> bool:
        """Whether a record waits for space (`save`)."""
        with self.lock:
            return any(s.unsaved for s in self._slots.values())

    def write_pending(self) -> None:
        """Write the records a full disk held back (`save`); those that still do not fit
        wait for the next call."""
        for slot in self.all():
            with slot.lock:
                if slot.removed or not slot.unsaved:
                    continue
                try:
                    self.store.save(slot.stored, settle=slot.unsettled)
                except OSError as exc:
                    _log.debug("record of %s still waits: %s", slot.id, exc.strerror)
                    continue
                slot.unsaved = slot.unsettled = False
                _log.info("container %s: its record is written again", slot.label)
