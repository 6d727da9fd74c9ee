"""Manager start: reconcile the store with runc and the monitors. Does I/O (through the
manager's adapters).

Run once before serving (kanto-reference §7 "Daemon start", decision 10). Whatever the
previous manager was doing when it stopped or was killed, afterwards:

- half-created containers (a directory without config.json, or one still CREATING) and
  DEAD ones (a remove that did not finish) are deleted, runc container and all;
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
from dataclasses import replace
from typing import TYPE_CHECKING

from ocirt.config.defaults import fill_defaults
from ocirt.errors import OcirtError
from ocirt.runtime import restart as policy
from ocirt.runtime.runc import RuncState, RuncStatus
from ocirt.runtime.state import Status
from ocirt.store.containers import StoredContainer

if TYPE_CHECKING:
    from ocirt.manager.manager import Manager, _Entry

_log = logging.getLogger(__name__)


def recover(mgr: Manager) -> None:
    from ocirt.manager.manager import _Entry

    loaded = mgr.store.load_all()
    try:
        runc_states = {state.id: state for state in mgr.runc.list()}
    except OcirtError as exc:
        _log.error("cannot list runc containers: %s", exc.message)
        runc_states = {}
    for bad in loaded.unreadable:
        _log.error("ignoring container directory %s: %s", bad.id, bad.reason)
    for container_id in loaded.half_created:
        _delete_runc(mgr, container_id)
        mgr.store.remove_half_created(container_id)

    entries: list[_Entry] = []
    for stored in loaded.containers:
        stored = replace(stored, definition=fill_defaults(stored.definition))
        if stored.runtime.state.status in (Status.CREATING, Status.DEAD):
            _destroy(mgr, stored)
            continue
        entries.append(_Entry(stored))
    keep = {entry.id for entry in entries} | {bad.id for bad in loaded.unreadable}
    with mgr._registry:
        for entry in entries:
            mgr._entries[entry.id] = entry

    for container_id in runc_states.keys() - keep:
        _delete_runc(mgr, container_id)
    try:
        mgr.network.reconcile(keep)
    except OcirtError as exc:
        _log.error("network reconcile failed: %s", exc.message)

    for entry in entries:
        with entry.lock:
            _reattach(mgr, entry, runc_states.get(entry.id))
    for entry in entries:
        with entry.lock:
            runtime = entry.stored.runtime
            if runtime.state.status not in (Status.STOPPED, Status.EXITED, Status.UNKNOWN):
                continue
            if entry.timer is not None:
                continue  # _reattach applied the policy to an exit that happened meanwhile
            if policy.should_start_on_boot(
                entry.stored.definition.config.restart_policy,
                runtime.state.exit_code,
                runtime.restart_count,
                runtime.manually_stopped,
                runtime.started_successfully_before,
            ):
                mgr._submit(_boot_start, mgr, entry)


def _reattach(mgr: Manager, entry: _Entry, runc_state: RuncState | None) -> None:
    paths = mgr._paths(entry.stored.definition)
    if not entry.state.status.is_active:
        if runc_state is not None:
            _delete_runc(mgr, entry.id)
        return
    record = mgr._read_exit(paths)
    if record is not None:
        mgr._finish_run(entry, record, Status.EXITED)
        mgr._apply_policy(entry)
        return
    alive = mgr._monitor_alive(paths)
    if (
        alive
        and runc_state is not None
        and runc_state.status
        in (
            RuncStatus.RUNNING,
            RuncStatus.PAUSED,
        )
    ):
        status = Status.PAUSED if runc_state.status is RuncStatus.PAUSED else Status.RUNNING
        # How long it ran before is unknown; count from now for the back-off reset.
        entry.run_started = time.monotonic()
        if status is not entry.state.status or runc_state.pid != entry.state.pid:
            mgr._save(entry, state=replace(entry.state, status=status, pid=runc_state.pid))
        return
    if alive:
        # The monitor outlived its container but has not written the record yet.
        record = mgr._wait_exit(entry, 5.0)
        if record is not None:
            mgr._finish_run(entry, record, Status.EXITED)
            mgr._apply_policy(entry)
            return
    # Nobody watches this container any more: its exit could not be recorded.
    _delete_runc(mgr, entry.id)
    mgr._finish_run(entry, None, Status.EXITED)
    mgr._apply_policy(entry)


def _boot_start(mgr: Manager, entry: _Entry) -> None:
    with entry.lock:
        if entry.removed or mgr._closed or entry.state.status.is_active:
            return
        with contextlib.suppress(OcirtError):
            mgr._start(entry)


def _destroy(mgr: Manager, stored: StoredContainer) -> None:
    try:
        mgr._destroy(stored)
    except (OcirtError, OSError) as exc:
        _log.error("cannot delete container %s: %s", stored.definition.id, exc)


def _delete_runc(mgr: Manager, container_id: str) -> None:
    try:
        mgr._delete_runc(container_id)
    except OcirtError as exc:
        _log.error("cannot delete runc container %s: %s", container_id, exc.message)
