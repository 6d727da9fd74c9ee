"""The real `Manager` over fakes (`FakeRuntime`, `FakeNetwork`), a real `ContainerStore`
and a directory rootfs under a test's tmp dir: no root, no runc."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ocirt.config.model import ContainerConfig, NetworkMode, RestartPolicy, RestartPolicyType
from ocirt.daemon.adapters import DirectoryRootfs
from ocirt.manager.manager import Manager, ManagerSettings
from ocirt.spec.facts import HostFacts
from ocirt.store.containers import ContainerStore
from tests.support.fake_network import FakeNetwork
from tests.support.fake_runtime import FakeRuntime

HOST = HostFacts(capabilities=("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"), hostname="dev")
NO_RESTART = RestartPolicy(RestartPolicyType.NO)


def config(**changes: object) -> ContainerConfig:
    """A host-network config with no restart policy, plus `changes`."""
    values: dict[str, object] = {
        "network_mode": NetworkMode.HOST,
        "cmd": ("sleep", "1000"),
        "restart_policy": NO_RESTART,
    }
    values.update(changes)
    return ContainerConfig(**values)  # type: ignore[arg-type]


@dataclass
class FakeEnv:
    base: Path
    runtime: FakeRuntime = field(init=False)
    network: FakeNetwork = field(default_factory=FakeNetwork)
    managers: list[Manager] = field(default_factory=list)
    exec_root: Path = field(init=False)

    def __post_init__(self) -> None:
        # Short: the notify socket's path must fit sun_path, which a tmp_path may not.
        self.exec_root = Path(tempfile.mkdtemp(prefix="ocm-"))
        self.rootfs.mkdir(parents=True, exist_ok=True)
        (self.rootfs / "etc").mkdir(exist_ok=True)
        (self.rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        self.runtime = FakeRuntime(self.settings().notify_socket)

    @property
    def rootfs(self) -> Path:
        return self.base / "rootfs"

    def settings(self, **changes: object) -> ManagerSettings:
        values: dict[str, object] = {
            "home_dir": self.base / "home",
            "exec_root": self.exec_root,
            "stop_timeout": 0.2,
        }
        values.update(changes)
        return ManagerSettings(**values)  # type: ignore[arg-type]

    def manager(self, *, recover: bool = True, **changes: object) -> Manager:
        settings = self.settings(**changes)
        mgr = Manager(
            settings,
            DirectoryRootfs(self.rootfs),
            self.network,
            HOST,
            runtime=self.runtime,
            store=ContainerStore(settings.home_dir),
        )
        self.managers.append(mgr)
        if recover:
            mgr.recover()
        return mgr

    def close(self) -> None:
        try:
            for mgr in self.managers:
                mgr.close()
        finally:
            shutil.rmtree(self.exec_root, ignore_errors=True)
