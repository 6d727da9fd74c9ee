"""Manager start: reconcile the store with runc and the monitors. Does I/O (through the
manager's adapters).

Run once before serving (docs/kanto-compatibility.md §7 "Daemon start",
docs/kanto-compatibility.md decision 10). Whatever the previous manager was doing when it stopped or
was killed, afterwards:

- half-created containers (a directory without config.json whose container never ran,
  or one still CREATING) and DEAD ones (a remove that did not finish) are deleted, runc
  container and all;
- damaged ones (config.json unreadable, or missing from a container that ran) are kept
  as they are, processes, network and logs included, and shown as UNKNOWN with the
  reason until the user removes them (`Slot.damaged`);
- RUNNING/PAUSED containers whose monitor is alive are re-attached (runc tells which of
  the two they are); those that exited meanwhile get their exit record applied, restart
  policy included; one whose monitor died without a record is killed and marked EXITED;
- any other container has no runc container (one left by a start that was cut short is
  force-deleted: the start never succeeded);
- a runc container in our root that the store does not know is force-deleted;
- the network forgets everything of containers it no longer has;
- stopped containers that ran before and whose policy allows are started (Kanto).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from ocirt.config.defaults import fill_defaults
from ocirt.config.state import Status
from ocirt.errors import OcirtError
from ocirt.manager import restart as policy
from ocirt.manager.ports import NetworkProvider
from ocirt.manager.registry import Registry, Slot
from ocirt.manager.supervisor import Supervisor
from ocirt.runtime.runc import RuncState, RuncStatus
from ocirt.store.containers import StoredContainer

_log = logging.getLogger(__name__)

# How long a monitor that outlived its container gets to write the exit record.
RECORD_WAIT = 5.0


def recover(
    registry: Registry,
    supervisor: Supervisor,
    network: NetworkProvider,
    destroy: Callable[[StoredContainer], None],
) -> None:
    """Load the store into `registry` and reconcile it (see the module docstring).
    `destroy` deletes everything of a DEAD container (`Manager.destroy`)."""
    runtime = supervisor.runtime
    loaded = registry.store.load_all()
    try:
        runc_states = {state.id: state for state in runtime.list()}
    except OcirtError as exc:
        _log.error("cannot list runc containers: %s", exc.message)
        runc_states = {}
    for bad in loaded.unreadable:
        _log.error(
            "container %s is damaged: %s; it is kept as it is (state UNKNOWN, processes"
            " left alone) until it is removed",
            bad.id,
            bad.reason,
        )
    for container_id in loaded.half_created:
        _delete_runc(supervisor, container_id)
        registry.store.remove_half_created(container_id)

    slots: list[Slot] = []
    for stored in loaded.containers:
        stored = replace(stored, definition=fill_defaults(stored.definition))
        if stored.runtime.state.status in (Status.CREATING, Status.DEAD):
            _destroy(destroy, stored)
            continue
        slots.append(Slot(stored))
    damaged = [
        _damaged_slot(bad.id, bad.reason, runc_states.get(bad.id)) for bad in loaded.unreadable
    ]
    keep = {slot.id for slot in slots} | {slot.id for slot in damaged}
    with registry.lock:
        for slot in [*slots, *damaged]:
            registry.add(slot)

    for container_id in runc_states.keys() - keep:
        _delete_runc(supervisor, container_id)
    try:
        network.reconcile(keep)
    except OcirtError as exc:
        _log.error("network reconcile failed: %s", exc.message)

    for slot in slots:
        with slot.lock:
            _reattach(registry, supervisor, slot, runc_states.get(slot.id))
    for slot in slots:
        with slot.lock:
            runtime_record = slot.stored.runtime
            if runtime_record.state.status not in (Status.STOPPED, Status.EXITED, Status.UNKNOWN):
                continue
            if slot.timer is not None:
                continue  # _reattach applied the policy to an exit that happened meanwhile
            if policy.should_start_on_boot(
                slot.stored.definition.config.restart_policy,
                runtime_record.state.exit_code,
                runtime_record.restart_count,
                runtime_record.manually_stopped,
                runtime_record.started_successfully_before,
            ):
                supervisor.submit(_boot_start, registry, supervisor, slot)


def _damaged_slot(container_id: str, reason: str, runc_state: RuncState | None) -> Slot:
    running = runc_state is not None and runc_state.status in (
        RuncStatus.RUNNING,
        RuncStatus.PAUSED,
    )
    return Slot.damaged(container_id, reason, runc_state.pid if running and runc_state else -1)


def _reattach(
    registry: Registry, supervisor: Supervisor, slot: Slot, runc_state: RuncState | None
) -> None:
    state_dir = registry.paths(slot.stored.definition).monitor
    if not slot.state.status.is_active:
        if runc_state is not None:
            _delete_runc(supervisor, slot.id)
        return
    record = supervisor.read_exit(state_dir)
    if record is not None:
        supervisor.finish_run(slot, record, Status.EXITED)
        supervisor.apply_policy(slot)
        return
    alive = supervisor.runtime.alive(state_dir)
    if (
        alive
        and runc_state is not None
        and runc_state.status in (RuncStatus.RUNNING, RuncStatus.PAUSED)
    ):
        status = Status.PAUSED if runc_state.status is RuncStatus.PAUSED else Status.RUNNING
        # How long it ran before is unknown; count from now for the back-off reset.
        slot.run_started = time.monotonic()
        if status is not slot.state.status or runc_state.pid != slot.state.pid:
            registry.save(slot, state=replace(slot.state, status=status, pid=runc_state.pid))
        _log.info("container %s re-attached (pid %d)", slot.label, runc_state.pid)
        return
    if alive:
        # The monitor outlived its container but has not written the record yet.
        record = supervisor.wait_exit(slot, RECORD_WAIT)
        if record is not None:
            supervisor.finish_run(slot, record, Status.EXITED)
            supervisor.apply_policy(slot)
            return
    # Nobody watches this container any more: its exit could not be recorded.
    _delete_runc(supervisor, slot.id)
    supervisor.finish_run(slot, None, Status.EXITED)
    supervisor.apply_policy(slot)


def _boot_start(registry: Registry, supervisor: Supervisor, slot: Slot) -> None:
    with slot.lock:
        if slot.removed or registry.closed or slot.state.status.is_active:
            return
        _log.info(
            "container %s started again by its restart policy %s",
            slot.label,
            slot.stored.definition.config.restart_policy.type.value,
        )
        with contextlib.suppress(OcirtError):
            supervisor.start(slot)


def _destroy(destroy: Callable[[StoredContainer], None], stored: StoredContainer) -> None:
    try:
        destroy(stored)
    except (OcirtError, OSError) as exc:
        _log.error("cannot delete container %s: %s", stored.definition.id, exc)


def _delete_runc(supervisor: Supervisor, container_id: str) -> None:
    try:
        supervisor.runtime.delete(container_id)
    except OcirtError as exc:
        _log.error("cannot delete runc container %s: %s", container_id, exc.message)
