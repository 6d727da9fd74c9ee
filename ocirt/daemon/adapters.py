"""The real adapters behind the manager's ports: the image store and the bridge network.
Does I/O (through `ocirt.image` and `ocirt.network`).

They only translate: `ImageRootfs` pulls or finds an image and mounts a snapshot as the
container's rootfs; `BridgeAttacher` attaches a container to the bridge (or to the host's
network) and hands back its netns and /etc files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocirt.config.model import ContainerConfig, Decryption, NetworkMode
from ocirt.manager.ports import Attached, PreparedRootfs
from ocirt.spec.facts import ImageConfig, NetworkAttachment

if TYPE_CHECKING:
    from ocirt.image import manifest
    from ocirt.image.service import ImageService
    from ocirt.network.bridge import BridgeNetwork


def spec_image(config: manifest.ImageConfig) -> ImageConfig:
    return ImageConfig(
        entrypoint=config.entrypoint,
        cmd=config.cmd,
        env=config.env,
        working_dir=config.working_dir,
        user=config.user,
        stop_signal=config.stop_signal,
        exposed_ports=config.exposed_ports,
        volumes=config.volumes,
        labels=tuple(sorted(config.labels.items())),
    )


class ImageRootfs:
    """RootfsProvider over the image store: pull if absent, then a snapshot per container.

    Per-container decryption settings override the daemon-wide ones (Kanto, §6).
    """

    def __init__(
        self,
        images: ImageService,
        keys: Sequence[str] = (),
        recipients: Sequence[str] = (),
    ) -> None:
        self.images = images
        self._keys = tuple(keys)
        self._recipients = tuple(recipients)

    def prepare(
        self, container_id: str, image_ref: str, decryption: Decryption, bundle_dir: Path
    ) -> PreparedRootfs:
        keys = decryption.keys or self._keys
        recipients = decryption.recipients or self._recipients
        decrypt = None
        if keys or recipients:
            from ocirt.image.ocicrypt_keys import load_decrypt_keys

            decrypt = load_decrypt_keys(keys, recipients)
        image = self.images.ensure(image_ref, decrypt)
        path = self.images.prepare_rootfs(image, container_id)
        return PreparedRootfs(path, spec_image(image.config))

    def activate(self, container_id: str, image_ref: str, bundle_dir: Path) -> PreparedRootfs:
        # prepare_rootfs is idempotent and remounts a snapshot lost with a reboot.
        image = self.images.get(image_ref)
        path = self.images.prepare_rootfs(image, container_id)
        return PreparedRootfs(path, spec_image(image.config))

    def release(self, container_id: str, bundle_dir: Path) -> None:
        self.images.release_rootfs(container_id)


class BridgeAttacher:
    """NetworkProvider over the bridge network; host mode shares the host's network."""

    def __init__(self, bridge: BridgeNetwork) -> None:
        self.bridge = bridge

    def attach(self, container_id: str, config: ContainerConfig, files_dir: Path) -> Attached:
        if config.network_mode is NetworkMode.HOST:
            got = self.bridge.attach_host(container_id, config.extra_hosts, files_dir)
        else:
            got = self.bridge.attach(
                container_id,
                config.host_name,
                config.domain_name,
                config.port_mappings,
                config.extra_hosts,
                files_dir,
            )
        where = (
            NetworkAttachment.host()
            if got.netns_path is None
            else NetworkAttachment.netns(str(got.netns_path))
        )
        hostname = got.files.hostname if got.netns_path is not None else None
        return Attached(
            where, hosts=got.files.hosts, resolv_conf=got.files.resolv_conf, hostname=hostname
        )

    def detach(self, container_id: str) -> None:
        self.bridge.detach(container_id)

    def reconcile(self, known_ids: Iterable[str]) -> None:
        self.bridge.reconcile(set(known_ids))
