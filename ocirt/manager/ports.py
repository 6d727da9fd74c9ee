"""The small ports through which the manager reaches images and networks. Does I/O in
the adapters at the end of this module (file copies, host file reads).

The manager depends only on the two Protocols, so it runs before `ocirt.image` and
`ocirt.network` are wired in, and a daemon picks the adapters:

- `RootfsProvider`: gives a container its root filesystem and image config.
  `DirectoryRootfs` copies a prepared directory (a busybox tree in tests, an unpacked
  image by hand); the image store's adapter mounts snapshots instead.
- `NetworkProvider`: attaches a container to its network and writes its /etc files.
  `HostNetwork` serves host mode only; `BridgeAdapter` serves both modes through
  `ocirt.network.bridge.BridgeNetwork`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ocirt.atomic import Durability, remove_tree, write_atomic
from ocirt.config.model import ContainerConfig, Decryption, NetworkMode
from ocirt.errors import ImageError, Unavailable
from ocirt.spec.facts import ImageConfig, NetworkAttachment

if TYPE_CHECKING:
    # Only for the annotation: the daemon imports the network stack when it needs it.
    from ocirt.network.bridge import BridgeNetwork


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
    def attach(self, container_id: str, config: ContainerConfig, files_dir: Path) -> Attached:
        """Connect the container (before `runc create`); raise NetworkError/Unavailable."""
        ...

    def detach(self, container_id: str) -> None:
        """Undo `attach`; a container that is not attached is not an error."""
        ...

    def reconcile(self, known_ids: Iterable[str]) -> None:
        """Drop whatever belongs to no known container (after a crash)."""
        ...


class DirectoryRootfs:
    """A rootfs taken from a directory: by default one private copy per container.

    The copy keeps the source pristine, since containers write into their rootfs. With
    `copy=False` every container uses the source directory itself (for read-only use,
    e.g. benchmarks); release then leaves it alone.
    """

    def __init__(
        self, source: Path, image: ImageConfig | None = None, *, copy: bool = True
    ) -> None:
        self.source = Path(source)
        self.image = image or ImageConfig()
        self.copy = copy

    def prepare(
        self, container_id: str, image_ref: str, decryption: Decryption, bundle_dir: Path
    ) -> PreparedRootfs:
        if not self.copy:
            return self.activate(container_id, image_ref, decryption, bundle_dir)
        target = bundle_dir / "rootfs"
        if target.exists():
            remove_tree(target)
        try:
            shutil.copytree(self.source, target, symlinks=True)
        except OSError as exc:
            remove_tree(target)
            raise ImageError(f"cannot copy the rootfs of {image_ref}: {exc}") from exc
        return PreparedRootfs(target, self.image)

    def activate(
        self, container_id: str, image_ref: str, decryption: Decryption, bundle_dir: Path
    ) -> PreparedRootfs:
        target = bundle_dir / "rootfs" if self.copy else self.source
        if not target.is_dir():
            raise ImageError(f"the rootfs of container {container_id} is missing")
        return PreparedRootfs(target, self.image)

    def release(self, container_id: str, bundle_dir: Path) -> None:
        if self.copy:
            remove_tree(bundle_dir / "rootfs")


class HostNetwork:
    """Host network mode only: the container shares the host's network namespace.

    It gets copies of the host's /etc/hosts (plus literal extraHosts) and resolv.conf;
    its hostname is the host's, set by the spec builder (Kanto, kanto-reference §4).
    """

    def __init__(self, etc: Path = Path("/etc")) -> None:
        self.etc = Path(etc)

    def _read(self, name: str) -> str:
        try:
            return (self.etc / name).read_text(errors="replace")
        except OSError:
            return ""

    def attach(self, container_id: str, config: ContainerConfig, files_dir: Path) -> Attached:
        if config.network_mode is not NetworkMode.HOST:
            raise Unavailable(
                f"network mode {config.network_mode.value} is not available: "
                "no bridge network is configured"
            )
        hosts = self._read("hosts")
        if hosts and not hosts.endswith("\n"):
            hosts += "\n"
        for entry in config.extra_hosts:
            name, _, value = entry.partition(":")
            hosts += f"{value}\t{name}\n"
        hosts_path = files_dir / "hosts"
        resolv_path = files_dir / "resolv.conf"
        # Rewritten at every start: atomic, not durable.
        write_atomic(hosts_path, hosts, durability=Durability.CRASH)
        write_atomic(resolv_path, self._read("resolv.conf"), durability=Durability.CRASH)
        return Attached(NetworkAttachment.host(), hosts=hosts_path, resolv_conf=resolv_path)

    def detach(self, container_id: str) -> None:
        return None

    def reconcile(self, known_ids: Iterable[str]) -> None:
        return None


class BridgeAdapter:
    """Both network modes through `ocirt.network.bridge.BridgeNetwork` (set up already)."""

    def __init__(self, bridge: BridgeNetwork) -> None:
        self.bridge = bridge

    def attach(self, container_id: str, config: ContainerConfig, files_dir: Path) -> Attached:
        if config.network_mode is NetworkMode.HOST:
            made = self.bridge.attach_host(container_id, config.extra_hosts, files_dir)
        else:
            made = self.bridge.attach(
                container_id,
                config.host_name,
                config.domain_name,
                config.port_mappings,
                config.extra_hosts,
                files_dir,
            )
        netns = made.netns_path
        attachment = (
            NetworkAttachment.host() if netns is None else NetworkAttachment.netns(str(netns))
        )
        # Host mode keeps the host's hostname through the spec (no hostname file).
        hostname = made.files.hostname if netns is not None else None
        return Attached(attachment, made.files.hosts, made.files.resolv_conf, hostname)

    def detach(self, container_id: str) -> None:
        self.bridge.detach(container_id)

    def reconcile(self, known_ids: Iterable[str]) -> None:
        self.bridge.reconcile(set(known_ids))
