"""The daemon's pulls in a helper process (`ocirt.daemon.pull`), against a real
docker-registry on 127.0.0.1: the image lands in the daemon's store, errors keep their
class, credentials reach the registry, and the create path uses the helper."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirt.config.model import Decryption
from ocirt.daemon.adapters import ImageRootfs
from ocirt.daemon.pull import HelperPull
from ocirt.errors import AuthenticationError, ImageNotFound
from ocirt.image.registry.auth import Credentials, RegistryAccess, RegistryConfig
from ocirt.image.service import ImageService

from .conftest import BuiltImage, Registry

pytestmark = pytest.mark.integration


def test_helper_pulls_into_the_store(
    registry: Registry, busybox_image: BuiltImage, home: Path
) -> None:
    registry.push(busybox_image.layout, "v1", "test/helper:v1")
    ref = f"{registry.host}/test/helper:v1"
    service = ImageService(home)
    assert not service.present(ref)
    HelperPull(home, RegistryAccess(insecure=frozenset({registry.host})))(ref, (), ())
    assert service.present(ref)
    assert str(service.get(ref).digest) == busybox_image.digest


def test_helper_errors_keep_their_class(
    registry: Registry, basic_registry: Registry, busybox_image: BuiltImage, home: Path
) -> None:
    pull = HelperPull(home, RegistryAccess(insecure=frozenset({registry.host})))
    with pytest.raises(ImageNotFound):
        pull(f"{registry.host}/test/absent:v1", (), ())
    basic_registry.push(busybox_image.layout, "v1", "test/private:v1")
    private = f"{basic_registry.host}/test/private:v1"
    wrong = RegistryAccess(
        insecure=frozenset({basic_registry.host}),
        configs={basic_registry.host: RegistryConfig(Credentials("alice", "wrong"))},
    )
    with pytest.raises(AuthenticationError):
        HelperPull(home, wrong)(private, (), ())
    assert basic_registry.creds is not None
    right = RegistryAccess(
        insecure=frozenset({basic_registry.host}),
        configs={basic_registry.host: RegistryConfig(Credentials(*basic_registry.creds))},
    )
    HelperPull(home, right)(private, (), ())
    assert ImageService(home).present(private)


def test_create_path_pulls_an_absent_image_through_the_helper_once(
    registry: Registry, busybox_image: BuiltImage, home: Path, tmp_path: Path
) -> None:
    registry.push(busybox_image.layout, "v1", "test/create:v1")
    ref = f"{registry.host}/test/create:v1"
    access = RegistryAccess(insecure=frozenset({registry.host}))
    calls: list[str] = []
    helper = HelperPull(home, access)

    def pull(reference: str, keys: object, recipients: object) -> None:
        calls.append(reference)
        helper(reference, (), ())

    service = ImageService(home, access)
    rootfs = ImageRootfs(service, pull=pull)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    prepared = rootfs.prepare("c-helper", ref, Decryption(), bundle)
    try:
        assert (prepared.path / "marker").read_bytes() == busybox_image.marker.encode()
        # Present now: a second container does not pull again.
        rootfs.prepare("c-helper2", ref, Decryption(), bundle)
        rootfs.release("c-helper2", bundle)
        assert calls == [ref]
    finally:
        rootfs.release("c-helper", bundle)
