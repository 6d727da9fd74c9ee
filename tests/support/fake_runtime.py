"""A recording runtime for the manager's unit tests, after youki's `Syscall` test fake:
every call is recorded, a failure can be scripted for any verb, and exits are simulated.

A launched container "runs" until a signal it does not ignore ends it (exit code 128 +
signal number) or the test calls `exit()`. Like the real monitor, an exit leaves a record
that `read_exit` returns and, when a notify socket is given, a notice on it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal as signals
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ocirt.config.model import ContainerDefinition, Resources
from ocirt.errors import MonitorError, NotFound, OcirtError
from ocirt.runtime.monitor import ExitRecord, MonitorHandle
from ocirt.runtime.runc import RuncState, RuncStatus
from ocirt.runtime.signals import parse_signal

Call = tuple[object, ...]


@dataclass
class FakeRun:
    """One container as the fake runtime holds it."""

    container_id: str
    state_dir: Path
    pid: int
    monitor_pid: int
    status: RuncStatus = RuncStatus.RUNNING
    # The runtime still has the container (until `delete`).
    present: bool = True
    # The monitor still watches it (it ends after writing the exit record).
    monitor_alive: bool = True
    record: ExitRecord | None = None
    damaged_record: bool = False
    handle_saved: bool = False
    signals: list[str] = field(default_factory=list)


class FakeRuntime:
    """The manager's `Runtime` port, in memory."""

    def __init__(self, notify_socket: Path | None = None) -> None:
        self.notify_socket = notify_socket
        self.calls: list[Call] = []
        self.runs: dict[str, FakeRun] = {}
        # Signals (as runc takes them, e.g. "SIGTERM") containers survive.
        self.ignored: set[str] = set()
        self._failures: dict[str, list[OcirtError]] = {}
        self._pids = itertools.count(1000)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ scripting

    def fail(self, verb: str, error: OcirtError) -> None:
        """The next call of `verb` raises `error` (and does nothing else)."""
        with self._lock:
            self._failures.setdefault(verb, []).append(error)

    def verbs(self, container_id: str | None = None) -> list[str]:
        """The verbs called so far (for one container, or all)."""
        with self._lock:
            return [
                str(c[0])
                for c in self.calls
                if container_id is None or (len(c) > 1 and c[1] == container_id)
            ]

    def exit(
        self,
        container_id: str,
        code: int = 0,
        *,
        oom: bool = False,
        record: bool = True,
        monitor_ends: bool = True,
        notify: bool = True,
    ) -> None:
        """The container's processes end; with `record` False the exit is lost."""
        with self._lock:
            run = self.runs[container_id]
            run.status = RuncStatus.STOPPED
            if record:
                run.record = ExitRecord(
                    exit_code=code,
                    signal=code - 128 if code > 128 else None,
                    finished_at=datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC),
                    oom_killed=oom,
                    dropped_log_lines=0,
                    container_pid=run.pid,
                )
            if monitor_ends:
                run.monitor_alive = False
        if notify:
            self._notify(container_id, code)

    def adopt(self, container_id: str, state_dir: Path, status: RuncStatus) -> FakeRun:
        """A container the runtime has from before (for recovery tests)."""
        with self._lock:
            run = FakeRun(container_id, state_dir, next(self._pids), next(self._pids), status)
            self.runs[container_id] = run
            return run

    def _notify(self, container_id: str, code: int) -> None:
        if self.notify_socket is None:
            return
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        ):
            notice = json.dumps({"id": container_id, "exitCode": code}).encode()
            sock.sendto(notice, str(self.notify_socket))

    def _call(self, verb: str, *args: object) -> None:
        with self._lock:
            self.calls.append((verb, *args))
            queued = self._failures.get(verb)
            if queued:
                raise queued.pop(0)

    def _run(self, container_id: str) -> FakeRun:
        run = self.runs.get(container_id)
        if run is None or not run.present:
            raise NotFound(f"runc: container {container_id} does not exist")
        return run

    # ------------------------------------------------------------------ the port

    def launch(
        self, definition: ContainerDefinition, bundle: Path, state_dir: Path, log_path: Path
    ) -> MonitorHandle:
        with self._lock:
            self._call("launch", definition.id, bundle, state_dir, log_path)
            if not (bundle / "config.json").is_file():
                raise MonitorError(f"no spec in {bundle}")
            run = FakeRun(definition.id, state_dir, next(self._pids), next(self._pids))
            self.runs[definition.id] = run
            return MonitorHandle(run.monitor_pid, run.pid, state_dir)

    def save_handle(self, handle: MonitorHandle) -> None:
        with self._lock:
            for run in self.runs.values():
                if run.monitor_pid == handle.monitor_pid:
                    self._call("save_handle", run.container_id)
                    run.handle_saved = True

    def kill(self, container_id: str, signal: str) -> bool:
        with self._lock:
            self._call("kill", container_id, signal)
            run = self.runs.get(container_id)
            if run is None or not run.present or run.status is RuncStatus.STOPPED:
                return False
            run.signals.append(signal)
            if signal in self.ignored:
                return True
        name = parse_signal(signal)
        number = int(name) if name.isdigit() else int(signals.Signals[name])
        self.exit(container_id, 128 + number)
        return True

    def pause(self, container_id: str) -> None:
        with self._lock:
            self._call("pause", container_id)
            self._run(container_id).status = RuncStatus.PAUSED

    def resume(self, container_id: str) -> None:
        with self._lock:
            self._call("resume", container_id)
            run = self._run(container_id)
            if run.status is RuncStatus.PAUSED:
                run.status = RuncStatus.RUNNING

    def delete(self, container_id: str) -> None:
        with self._lock:
            self._call("delete", container_id)
            run = self.runs.get(container_id)
            if run is not None:
                run.present = False

    def forget(self, container_id: str, state_dir: Path) -> None:
        with self._lock:
            self._call("forget", container_id)
            run = self.runs.get(container_id)
            if run is not None:
                run.present = False
                # The last run's exit record and handle are gone with its state dir.
                run.record = None
                run.monitor_alive = False
            state_dir.mkdir(parents=True, exist_ok=True)

    def update_memory(self, container_id: str, resources: Resources) -> None:
        with self._lock:
            self._call("update_memory", container_id, resources)
            self._run(container_id)

    def read_exit(self, state_dir: Path) -> ExitRecord | None:
        with self._lock:
            for run in self.runs.values():
                if run.state_dir == state_dir:
                    if run.damaged_record:
                        raise MonitorError(f"damaged exit record in {state_dir}")
                    return run.record
            return None

    def alive(self, state_dir: Path) -> bool:
        with self._lock:
            return any(
                run.monitor_alive and run.state_dir == state_dir for run in self.runs.values()
            )

    def list(self) -> Sequence[RuncState]:
        with self._lock:
            self._call("list")
            return [
                RuncState(run.container_id, run.pid, run.status, "", "")
                for run in self.runs.values()
                if run.present
            ]
