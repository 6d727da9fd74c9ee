"""Helpers of the manager suites: configs, waiting, an event recorder, the test
environment (private home/exec dirs under /run, busybox rootfs via DirectoryRootfs)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ocirt.config.model import ContainerConfig, NetworkMode, RestartPolicy, RestartPolicyType
from ocirt.manager.manager import Manager, ManagerSettings
from ocirt.manager.ports import DirectoryRootfs, HostNetwork
from ocirt.manager.types import ContainerView, Event
from ocirt.runtime import monitor
from ocirt.runtime.hostfacts import read_host_facts

# Exits on SIGTERM at once (PID 1 has no default action for it), else runs forever.
SERVE = ("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done")
NO_RESTART = RestartPolicy(RestartPolicyType.NO)


def cfg(*cmd: str, **changes: object) -> ContainerConfig:
    """A host-network config (no bridge in these suites) running `cmd`."""
    values: dict[str, object] = {
        "network_mode": NetworkMode.HOST,
        "cmd": cmd or SERVE,
        "restart_policy": NO_RESTART,
    }
    values.update(changes)
    return ContainerConfig(**values)  # type: ignore[arg-type]


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until `predicate()`; the timeout only bounds a hang, it asserts no speed."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Recorder:
    """Collects events from the dispatcher thread."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, container_id: str) -> list[tuple[str, str]]:
        with self._cond:
            return [
                (e.kind.value, e.container.state.status.name)
                for e in self.events
                if e.container.id == container_id
            ]

    def wait(self, container_id: str, count: int, timeout: float = 30.0) -> list[tuple[str, str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([e for e in self.events if e.container.id == container_id]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} events, got {self.of(container_id)}")
                self._cond.wait(left)
        return self.of(container_id)


@dataclass
class Env:
    home: Path
    exec_root: Path
    runc_root: Path
    rootfs: Path
    cgroup_parent: str
    managers: list[Manager] = field(default_factory=list)

    @property
    def settings(self) -> ManagerSettings:
        return ManagerSettings(
            home_dir=self.home,
            exec_root=self.exec_root,
            runtime_root=self.runc_root,
            stop_timeout=10.0,
            cgroup_parent=self.cgroup_parent,
        )

    def manager(self, *, recover: bool = True, **changes: object) -> Manager:
        settings = self.settings
        if changes:
            from dataclasses import replace

            settings = replace(settings, **changes)  # type: ignore[arg-type]
        mgr = Manager(settings, DirectoryRootfs(self.rootfs), HostNetwork(), read_host_facts())
        self.managers.append(mgr)
        if recover:
            mgr.recover()
        return mgr

    def runc_ids(self) -> list[str]:
        out = subprocess.run(
            ["runc", "--root", str(self.runc_root), "list", "-q"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return sorted(out.split())

    def runc_state(self, container_id: str) -> dict[str, object]:
        """`runc state` of a container, as runc prints it."""
        out = subprocess.run(
            ["runc", "--root", str(self.runc_root), "state", container_id],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        state: dict[str, object] = json.loads(out)
        return state

    def monitor_pids(self) -> list[int]:
        pids = []
        for handle in self.home.glob("containers/*/monitor/handle.json"):
            try:
                pid = json.loads(handle.read_text())["monitorPid"]
            except (OSError, ValueError, KeyError):
                continue
            if monitor.is_alive(pid):
                pids.append(pid)
        return pids

    def exec(self, container_id: str, *argv: str) -> str:
        out = subprocess.run(
            ["runc", "--root", str(self.runc_root), "exec", container_id, *argv],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return out.stdout


def status_of(mgr: Manager, container_id: str) -> str:
    view: ContainerView = mgr.get(container_id)
    return view.state.status.name
