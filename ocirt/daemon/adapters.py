"""The adapters behind the manager's RootfsProvider and NetworkProvider ports. Does I/O
(file copies, host file reads, and through `ocirt.image` and `ocirt.network`).

They only translate:
- `ImageRootfs` pulls or finds an image, checks that the container's keys open it, and
  mounts a snapshot as the container's rootfs; `DirectoryRootfs` copies a prepared
  directory (a busybox tree in tests, an unpacked image by hand).
- `HostNetwork` serves host mode only; `BridgeAdapter` serves both modes through
  `ocirt.network.bridge.BridgeNetwork`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocirt.atomic import Durability, remove_tree, write_atomic
from ocirt.config.model import ContainerConfig, Decryption, NetworkMode
from ocirt.errors import ImageError, InvalidArgument, Unavailable
from ocirt.manager.ports import Attached, PreparedRootfs
from ocirt.spec.facts import ImageConfig, NetworkAttachment

if TYPE_CHECKING:
    from ocirt.image.ocicrypt.keys import DecryptKeys
    from ocirt.image.service import ImageService
    from ocirt.network.bridge import BridgeNetwork


class ImageRootfs:
    """RootfsProvider over the image store: pull if absent, then a snapshot per container.

    Per-container decryption settings override the daemon-wide ones (Kanto, §6). An
    encrypted image is authorised with them at create, even when it is already on the
    device, and again before each start (Kanto checks before unpack and before each start),
    so a container whose keys do not open the image never runs it.
    """

    def __init__(
        self,
        images: ImageService,
        keys: Sequence[str] = (),
        recipients: Sequence[str] = (),
        *,
        pull: Callable[[str, Sequence[str], Sequence[str]], None] | None = None,
    ) -> None:
        self.images = images
        self._keys = tuple(keys)
        self._recipients = tuple(recipients)
        # (reference, key files, recipients): pulls an absent image into `images`' store
        # elsewhere (the daemon's `ocirt.daemon.pull.HelperPull`); None pulls in-process.
        self._pull = pull

    def _decrypt_keys(self, decryption: Decryption) -> DecryptKeys | None:
        keys = decryption.keys or self._keys
        recipients = decryption.recipients or self._recipients
        if not (keys or recipients):
            return None
        # Imported here: key loading pulls in cryptography, which plain images never need.
        from ocirt.image.service import load_decrypt_keys

        return load_decrypt_keys(keys, recipients)

    def prepare(
        self, container_id: str, image_ref: str, decryption: Decryption, bundle_dir: Path
    ) -> PreparedRootfs:
        if self._pull is not None and not self.images.present(image_ref):
            # Not swept meanwhile: the helper stores blobs before the record keeping them.
            with self.images.importing():
                self._pull(
                    image_ref,
                    decryption.keys or self._keys,
                    decryption.recipients or self._recipients,
                )
        image = self.images.ensure(image_ref, self._decrypt_keys(decryption))
        path = self.images.prepare_rootfs(image, container_id)
        return PreparedRootfs(path, image.config.execution)

    def activate(
        self, container_id: str, image_ref: str, decryption: Decryption, bundle_dir: Path
    ) -> PreparedRootfs:
        image = self.images.get(image_ref)
        # Keys are loaded afresh each time: a key file removed or replaced since the last
        # start must count, and a plain image needs none.
        if self.images.encrypted_layers(image):
            self.images.authorise(image, self._decrypt_keys(decryption))
        # prepare_rootfs is idempotent and remounts a snapshot lost with a reboot.
        path = self.images.prepare_rootfs(image, container_id)
        return PreparedRootfs(path, image.config.execution)

    def release(self, container_id: str, bundle_dir: Path) -> None:
        self.images.release_rootfs(container_id)


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


BRIDGE_DISABLED = (
    "network mode bridge is not available: the default bridge is disabled "
    "(network.default_bridge.disable); create the container with network mode host"
)


class HostNetwork:
    """Host network mode only: the container shares the host's network namespace.

    It gets copies of the host's /etc/hosts (plus literal extraHosts) and resolv.conf;
    its hostname is the host's, set by the spec builder (Kanto, docs/kanto-compatibility.md §4).
    """

    def __init__(self, etc: Path = Path("/etc"), bridge_disabled: bool = False) -> None:
        self.etc = Path(etc)
        # Kanto's `network.default_bridge.disable`: bridge mode is refused as bad input
        # (400), not as a bridge that failed to come up (503).
        self.bridge_disabled = bridge_disabled

    def _read(self, name: str) -> str:
        try:
            return (self.etc / name).read_text(errors="replace")
        except OSError:
            return ""

    def planned(self, container_id: str, config: ContainerConfig) -> NetworkAttachment:
        if config.network_mode is not NetworkMode.HOST:
            if self.bridge_disabled:
                raise InvalidArgument(BRIDGE_DISABLED)
            raise Unavailable(
                f"network mode {config.network_mode.value} is not available: "
                "no bridge network is configured"
            )
        return NetworkAttachment.host()

    def attach(self, container_id: str, config: ContainerConfig, files_dir: Path) -> Attached:
        self.planned(container_id, config)
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

    def planned(self, container_id: str, config: ContainerConfig) -> NetworkAttachment:
        from ocirt.network.plan import netns_path

        if config.network_mode is NetworkMode.HOST:
            return NetworkAttachment.host()
        return NetworkAttachment.netns(netns_path(self.bridge.settings.name, container_id))

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
