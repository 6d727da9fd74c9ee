"""The small ports through which the manager reaches its effects. Protocols and the values
they carry only: no I/O here.

The manager depends only on these, so its use cases run on fakes in the unit tests
(`tests/support`) and a daemon picks the adapters (`ocirt.daemon.adapters`, plus
`ocirt.runtime.monitored.MonitoredRunc` and `ocirt.store.containers.ContainerStore`):

- `RootfsProvider`: gives a container its root filesystem and image config.
- `NetworkProvider`: attaches a container to its network and writes its /etc files.
- `Runtime`: runs a container (through its monitor) and controls it afterwards.
- `ContainerStore`: the persisted containers and their directories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ocirt.atomic import Durability
from ocirt.config.model import ContainerConfig, ContainerDefinition, Decryption, Resources
from ocirt.runtime.monitor import ExitRecord, MonitorHandle
from ocirt.runtime.runc import RuncState
from ocirt.spec.facts import ImageConfig, NetworkAttachment
from ocirt.store.containers import ContainerPaths, LoadResult, StoredContainer


@dataclass(frozen=True, slots=True)
class PreparedRootfs:
    path: Path
    image: ImageConfig = field(default_factory=ImageConfig)


class RootfsProvider(Protocol):
    def prepare(
        self, container_id: str, image_ref: str, decryption: Decryption, bundle_dir: Path
    ) -> PreparedRootfs:
        """Make the container's rootfs (at create). Raises an ImageError subclass."""
        ...

    def activate(
        self, container_id: str, image_ref: str, decryption: Decryption, bundle_dir: Path
    ) -> PreparedRootfs:
        """Make the rootfs usable before each start (e.g. remount after a reboot); an
        encrypted image's keys are checked again (Kanto). Raises an ImageError subclass."""
        ...

    def release(self, container_id: str, bundle_dir: Path) -> None:
        """Delete the rootfs (at remove); nothing left is not an error."""
        ...


@dataclass(frozen=True, slots=True)
class Attached:
    """A container's network: where it lives and the /etc files to bind-mount (or None)."""

    attachment: NetworkAttachment
    hosts: Path | None = None
    resolv_conf: Path | None = None
    hostname: Path | None = None


class NetworkProvider(Protocol):
    def planned(self, container_id: str, config: ContainerConfig) -> NetworkAttachment:
        """The attachment `attach` will give, without making it (for create's check of the
        spec); Unavailable when this network cannot serve the config's mode."""
        ...

    def attach(self, container_id: str, config: ContainerConfig, files_dir: Path) -> Attached:
        """Connect the container (before `runc create`); raise NetworkError/Unavailable."""
        ...

    def detach(self, container_id: str) -> None:
        """Undo `attach`; a container that is not attached is not an error."""
        ...

    def reconcile(self, known_ids: Iterable[str]) -> None:
        """Drop whatever belongs to no known container (after a crash)."""
        ...


class Runtime(Protocol):
    """What the manager needs of the OCI runtime and the per-container monitor."""

    def launch(
        self, definition: ContainerDefinition, bundle: Path, state_dir: Path, log_path: Path
    ) -> MonitorHandle:
        """Run the container of the bundle (`runc run -d` under a monitor); raise an
        OcirtError (RuncError with runc's stderr, MonitorError) when it does not run."""
        ...

    def save_handle(self, handle: MonitorHandle) -> None:
        """Keep the handle in its state dir, for `alive` after a manager restart."""
        ...

    def kill(self, container_id: str, signal: str) -> bool:
        """Send a signal (as `ocirt.runtime.signals.parse_signal` returns it); False when
        the container has no running process (any more)."""
        ...

    def pause(self, container_id: str) -> None: ...

    def resume(self, container_id: str) -> None: ...

    def delete(self, container_id: str) -> None:
        """Force-delete the runtime's container; none is not an error."""
        ...

    def forget(self, container_id: str, state_dir: Path) -> None:
        """Before a new run: delete what an earlier run left in the runtime, and leave
        `state_dir` empty (the last run's exit record and handle are not the new run's)."""
        ...

    def update_memory(self, container_id: str, resources: Resources) -> None:
        """Apply the memory resources to a running container."""
        ...

    def read_exit(self, state_dir: Path) -> ExitRecord | None:
        """The run's exit record, None while it runs; a damaged one raises MonitorError."""
        ...

    def alive(self, state_dir: Path) -> bool:
        """Whether the run's monitor still watches its container."""
        ...

    def list(self) -> Sequence[RuncState]:
        """The runtime's containers (for recovery)."""
        ...


class ContainerStore(Protocol):
    """The persisted containers (`ocirt.store.containers.ContainerStore`)."""

    def paths(self, container_id: str, log_root_dir: str = "") -> ContainerPaths: ...

    def prepare_dirs(self, paths: ContainerPaths, *, durable: bool = True) -> None: ...

    def save(
        self,
        stored: StoredContainer,
        durability: Durability = Durability.FULL,
        *,
        settle: bool = False,
    ) -> None: ...

    def settle(self, paths: ContainerPaths) -> None: ...

    def load_all(self) -> LoadResult: ...

    def remove(self, container_id: str, log_root_dir: str = "") -> None: ...

    def remove_half_created(self, container_id: str) -> None: ...
