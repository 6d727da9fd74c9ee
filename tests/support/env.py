"""The integration environment of a real manager: private home/exec/runc dirs, the real
runtime (runc through the monitor), the real store, and a clean-up that removes every
container and monitor it made, even after a failure. Needs root."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from ocirt.daemon.adapters import DirectoryRootfs, HostNetwork
from ocirt.manager.manager import Manager, ManagerSettings
from ocirt.manager.ports import NetworkProvider, RootfsProvider
from ocirt.runtime import monitor
from ocirt.runtime.hostfacts import read_host_facts
from ocirt.runtime.monitored import MonitoredRunc
from ocirt.store.containers import ContainerStore


def real_manager(
    settings: ManagerSettings, rootfs: RootfsProvider, network: NetworkProvider
) -> Manager:
    """A manager over the real runtime and store, as the daemon builds it."""
    runtime = MonitoredRunc(
        settings.runc_root, settings.runtime, notify_socket=settings.notify_socket
    )
    return Manager(
        settings,
        rootfs,
        network,
        read_host_facts(),
        runtime=runtime,
        store=ContainerStore(settings.home_dir),
    )


@dataclass
class Env:
    home: Path
    exec_root: Path
    runc_root: Path
    rootfs: Path | None
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

    def manager(
        self,
        *,
        rootfs: RootfsProvider | None = None,
        network: NetworkProvider | None = None,
        recover: bool = True,
        **changes: object,
    ) -> Manager:
        """A manager of this environment (a copy of `rootfs` per container, host network
        by default); `changes` alter its settings."""
        settings = self.settings
        if changes:
            settings = replace(settings, **changes)  # type: ignore[arg-type]
        if rootfs is None:
            assert self.rootfs is not None, "this environment has no directory rootfs"
            rootfs = DirectoryRootfs(self.rootfs)
        mgr = real_manager(settings, rootfs, network or HostNetwork())
        self.managers.append(mgr)
        if recover:
            mgr.recover()
        return mgr

    def runc(self, *args: str) -> str:
        return subprocess.run(
            ["runc", "--root", str(self.runc_root), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout

    def runc_ids(self) -> list[str]:
        return sorted(self.runc("list", "-q").split())

    def runc_state(self, container_id: str) -> dict[str, object]:
        """`runc state` of a container, as runc prints it."""
        state: dict[str, object] = json.loads(self.runc("state", container_id))
        return state

    def monitor_pids(self) -> list[int]:
        """The monitors of this environment's containers that still run."""
        pids = []
        for state_dir in self.home.glob("containers/*/monitor"):
            pid = monitor.read_monitor_pid(state_dir)
            if pid is not None and monitor.is_alive(pid):
                pids.append(pid)
        return pids

    def exec(self, container_id: str, *argv: str) -> str:
        return self.runc("exec", container_id, *argv)

    def clean_up(self, *, remove_containers: bool = False) -> None:
        """Close the managers, then delete every runc container and kill every monitor."""
        for mgr in self.managers:
            # Clean-up goes on whatever one manager's close says.
            if remove_containers:
                with contextlib.suppress(Exception):
                    for view in mgr.list():
                        with contextlib.suppress(Exception):
                            mgr.remove(view.id, force=True)
            with contextlib.suppress(Exception):
                mgr.close()
        for cid in self.runc_ids():
            subprocess.run(
                ["runc", "--root", str(self.runc_root), "delete", "-f", cid],
                capture_output=True,
                check=False,
            )
        for pid in self.monitor_pids():
            os.kill(pid, signal.SIGKILL)
