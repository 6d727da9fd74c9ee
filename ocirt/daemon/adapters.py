"""The image store behind the manager's RootfsProvider port. Does I/O (through
`ocirt.image`).

It only translates: `ImageRootfs` pulls or finds an image, checks that the container's
keys open it, and mounts a snapshot as the container's rootfs. The bridge network's
adapter is `ocirt.manager.ports.BridgeAdapter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ocirt.config.model import Decryption
from ocirt.manager.ports import PreparedRootfs

if TYPE_CHECKING:
    from ocirt.image.ocicrypt.keys import DecryptKeys
    from ocirt.image.service import ImageService


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
    ) -> None:
        self.images = images
        self._keys = tuple(keys)
        self._recipients = tuple(recipients)

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
