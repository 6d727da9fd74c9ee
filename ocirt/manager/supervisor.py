"""Exits and restarts: what happens to a container after it starts. Does I/O (through the
runtime and network ports, a listener thread, timers and a small worker pool).

Exit notices arrive on a listener thread (`ocirt.manager.exits`) and are handled, like
restart timers, on the worker pool, under the container's lock. An exit is recorded by
the container's monitor (its exit record survives the manager) and then applied:
EXITED, runtime resources released, restart policy with back-off (`restart`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ocirt.config.state import Status
from ocirt.errors import OcirtError
from ocirt.manager import restart as policy
from ocirt.manager import rules
from ocirt.manager.exits import ExitListener
from ocirt.manager.ports import NetworkProvider, Runtime
from ocirt.manager.registry import Registry, Slot
from ocirt.manager.types import ContainerState, ContainerView, EventKind

_log = logging.getLogger(__name__)

# How often a waiting stop looks at the exit record when no notice has arrived.
EXIT_POLL = 0.1


def _ending(state: ContainerState) -> str:
    """How the log tells the end of a run: "exited with code 3", "stopped (exit code 0)"."""
    if state.status is Status.EXITED:
        text = f"exited with code {state.exit_code}"
    else:
        text = f"{state.status.name.lower()} (exit code {state.exit_code})"
    if state.error:
        text += f": {state.error}"
    return text


class Supervisor:
    """Applies exits and runs restart timers for the containers of one registry."""

    def __init__(
        self,
        registry: Registry,
        runtime: Runtime,
        network: NetworkProvider,
        emit: Callable[[EventKind, ContainerView], None],
        start: Callable[[Slot], None],
        notify_socket: Path,
        *,
        sweep_interval: float = 5.0,
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.network = network
        self._emit = emit
        # The manager's: runs a container again (under its lock); raises OcirtError.
        self.start = start
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ocirt-mgr")
        self._listener = ExitListener(
            notify_socket, self.on_notice, self.sweep, sweep_interval=sweep_interval
        )

    def listen(self) -> None:
        self._listener.start()

    def close(self) -> None:
        """Cancel every timer and stop the listener and the workers (registry closed)."""
        for slot in self.registry.all():
            with slot.lock:
                self.cancel_timer(slot)
        self._listener.close()
        self._workers.shutdown(wait=True)

    # ------------------------------------------------------------------ notices

    def on_notice(self, container_id: str) -> None:
        """Called on the listener thread: wake a waiting stop, then apply the exit."""
        slot = self.registry.find(container_id)
        if slot is None:
            return
        slot.exited.set()
        if not self.registry.closed:
            self.submit(self._handle_exit, slot)

    def sweep(self) -> None:
        """Look at every running container: catches a lost notice (`ocirt.manager.exits`)."""
        for slot in self.registry.active():
            self.submit(self._handle_exit, slot)
        if self.registry.pending():
            self.submit(self.registry.write_pending)

    def _handle_exit(self, slot: Slot) -> None:
        with slot.lock:
            if not slot.removed:
                self.check_exit(slot)

    # ------------------------------------------------------------------ exits

    def check_exit(self, slot: Slot) -> None:
        """If the container has exited, apply the exit (state, clean-up, restart policy).

        Reads the monitor's exit record; a dead monitor without a record lost the exit.
        """
        if not slot.state.status.is_active:
            return
        state_dir = self.registry.paths(slot.stored.definition).monitor
        record = self.read_exit(state_dir)
        if record is None:
            if self.runtime.alive(state_dir):
                return
            record = self.read_exit(state_dir) or rules.Exit.lost()
        self.finish_run(slot, record, Status.EXITED)
        self.apply_policy(slot)

    def read_exit(self, state_dir: Path) -> rules.Exit | None:
        try:
            record = self.runtime.read_exit(state_dir)
        except OcirtError as exc:
            return rules.Exit.lost(exc.message)
        if record is None:
            return None
        return rules.Exit.recorded(record.exit_code, record.finished_at, record.oom_killed)

    def wait_exit(self, slot: Slot, timeout: float) -> rules.Exit | None:
        """The run's exit, waiting up to `timeout` seconds; None if it still runs."""
        state_dir = self.registry.paths(slot.stored.definition).monitor
        deadline = time.monotonic() + timeout
        while True:
            record = self.read_exit(state_dir)
            if record is not None:
                return record
            if not self.runtime.alive(state_dir):
                # The monitor writes its record before it ends; read once more for the
                # case where both happened since the first look.
                return self.read_exit(state_dir) or rules.Exit.lost()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # A notice (possibly a late one of an earlier run) wakes us; the record decides.
            if slot.exited.wait(min(remaining, EXIT_POLL)):
                slot.exited.clear()

    def finish_run(
        self,
        slot: Slot,
        record: rules.Exit | None,
        status: Status,
        *,
        emit: bool = True,
    ) -> None:
        """Record the end of a run and release what it held."""
        record = record or rules.Exit.lost()
        self.release_runtime(slot.id)
        self.registry.save(
            slot,
            state=ContainerState(
                status=status,
                pid=-1,
                exit_code=record.exit_code,
                error=record.error,
                started_at=slot.state.started_at,
                finished_at=record.finished_at,
                oom_killed=record.oom_killed,
            ),
        )
        _log.info("container %s %s", slot.label, _ending(slot.state))
        if emit:
            self._emit(EventKind.STATE, slot.view())

    def release_runtime(self, container_id: str) -> None:
        """runc delete and network detach after a run; failures are logged, not raised."""
        try:
            self.runtime.delete(container_id)
        except OcirtError as exc:
            _log.warning("runc delete of %s failed: %s", container_id, exc.message)
        try:
            self.network.detach(container_id)
        except OcirtError as exc:
            _log.warning("network detach of %s failed: %s", container_id, exc.message)

    # ------------------------------------------------------------------ restarts

    def apply_policy(self, slot: Slot) -> None:
        runtime = slot.stored.runtime
        restart_policy = slot.stored.definition.config.restart_policy
        if self.registry.closed or not policy.should_restart(
            restart_policy, runtime.state.exit_code, runtime.restart_count, runtime.manually_stopped
        ):
            return
        ran_for = time.monotonic() - slot.run_started if slot.run_started else 0.0
        slot.backoff = policy.next_backoff(slot.backoff, ran_for, restart_policy)
        self._schedule_restart(slot, slot.backoff)

    def _schedule_restart(self, slot: Slot, delay: float) -> None:
        self.cancel_timer(slot)
        slot.timer_token += 1
        token = slot.timer_token
        timer = threading.Timer(delay, lambda: self.submit(self._restart, slot, token))
        timer.daemon = True
        slot.timer = timer
        timer.start()

    def _restart(self, slot: Slot, token: int) -> None:
        with slot.lock:
            if slot.removed or self.registry.closed or token != slot.timer_token:
                return
            slot.timer = None
            if slot.state.status is not Status.EXITED:
                return
            runtime = slot.stored.runtime
            self.registry.save(slot, restart_count=runtime.restart_count + 1)
            _log.info(
                "container %s restarted by its restart policy %s (restart %d)",
                slot.label,
                slot.stored.definition.config.restart_policy.type.value,
                runtime.restart_count + 1,
            )
            with contextlib.suppress(OcirtError):
                self.start(slot)

    def cancel_timer(self, slot: Slot) -> None:
        slot.timer_token += 1
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None

    # ------------------------------------------------------------------ workers

    def submit(self, fn: Callable[..., None], *args: object) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception:
                _log.exception("background container task failed")

        with contextlib.suppress(RuntimeError):
            self._workers.submit(run)
