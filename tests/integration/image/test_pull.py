"""Pulls from a real docker-registry 2.8.2 on 127.0.0.1: tag, digest, multi-platform
index, Basic auth, Bearer tokens, HTTPS with a test CA and client certificate."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirt.errors import AuthenticationError, ImageNotFound, RegistryUnavailable
from ocirt.image.manifest import Platform
from ocirt.image.registry.auth import Credentials, RegistryAccess, RegistryConfig, Transport
from ocirt.image.service import ImageService, Progress

from .conftest import BuiltImage, Pki, Registry, TokenServer, mkimage

pytestmark = pytest.mark.integration


def insecure(registry: Registry) -> RegistryAccess:
    return RegistryAccess(insecure=frozenset({registry.host}))


def read_in_rootfs(service: ImageService, image_ref: str, cid: str, path: str) -> bytes:
    image = service.get(image_ref)
    rootfs = service.prepare_rootfs(image, cid)
    try:
        return (rootfs / path).read_bytes()
    finally:
        service.release_rootfs(cid)


def test_pull_by_tag_unpacks_every_layer_and_reports_progress(
    registry: Registry, busybox_image: BuiltImage, home: Path
) -> None:
    registry.push(busybox_image.layout, "v1", "test/bytag:v1")
    events: list[Progress] = []
    service = ImageService(home, insecure(registry))
    image = service.pull(f"{registry.host}/test/bytag:v1", progress=events.append)

    assert str(image.digest) == busybox_image.digest
    assert image.config.execution.cmd == ("/bin/sh",)
    assert image.config.execution.user == "user"
    assert len(image.chain_ids) == 4
    assert read_in_rootfs(service, image.reference, "c1", "marker") == busybox_image.marker.encode()
    # Every layer reported its full size at the end.
    finals = {e.layer: e.done for e in events if e.done == e.total}
    assert len(finals) == 4
    assert [i.reference for i in service.images()] == [f"{registry.host}/test/bytag:v1"]


def test_pull_by_digest_and_ensure_does_not_pull_again(
    registry: Registry, busybox_image: BuiltImage, home: Path
) -> None:
    registry.push(busybox_image.layout, "v1", "test/bydigest:v1")
    service = ImageService(home, insecure(registry))
    ref = f"{registry.host}/test/bydigest@{busybox_image.digest}"
    image = service.ensure(ref)
    assert str(image.digest) == busybox_image.digest
    # A second ensure is served from the store: it works with the registry unreachable.
    offline = ImageService(home, RegistryAccess(insecure=frozenset({"127.0.0.1:1"})))
    assert offline.ensure(ref).digest == image.digest


def test_unknown_image_is_image_not_found(registry: Registry, home: Path) -> None:
    service = ImageService(home, insecure(registry))
    with pytest.raises(ImageNotFound, match="test/nothere"):
        service.pull(f"{registry.host}/test/nothere:v1")


def test_multi_platform_index_picks_our_platform(
    registry: Registry, busybox_rootfs: Path, tmp_path: Path, home: Path
) -> None:
    layout = tmp_path / "multi"
    entries = []
    for arch, variant in (("arm", "v7"), ("amd64", "")):
        layer = mkimage.Layer(
            mkimage.tar_bytes(lambda t, a=arch: mkimage.add_file(t, "arch", a.encode()))
        )
        entries.append(mkimage.write_image(layout, [layer], architecture=arch, variant=variant))
    mkimage.write_index(layout, "multi", entries, nested=True)
    registry.push(layout, "multi", "test/multi:v1", all_platforms=True)

    for want, expected in (
        (Platform("linux", "amd64"), b"amd64"),
        (Platform("linux", "arm", "v8"), b"arm"),
    ):
        service = ImageService(home / want.architecture, insecure(registry), platform=want)
        image = service.pull(f"{registry.host}/test/multi:v1")
        assert image.platform.architecture == expected.decode()
        assert read_in_rootfs(service, image.reference, "c", "arch") == expected


def test_basic_auth(basic_registry: Registry, busybox_image: BuiltImage, home: Path) -> None:
    basic_registry.push(busybox_image.layout, "v1", "test/basic:v1")
    ref = f"{basic_registry.host}/test/basic:v1"
    with pytest.raises(AuthenticationError):
        ImageService(home / "anon", insecure(basic_registry)).pull(ref)
    wrong = RegistryAccess(
        insecure=frozenset({basic_registry.host}),
        configs={basic_registry.host: RegistryConfig(Credentials("alice", "wrong"))},
    )
    with pytest.raises(AuthenticationError):
        ImageService(home / "wrong", wrong).pull(ref)
    good = RegistryAccess(
        insecure=frozenset({basic_registry.host}),
        configs={basic_registry.host: RegistryConfig(Credentials("alice", "s3cret"))},
    )
    image = ImageService(home / "good", good).pull(ref)
    assert str(image.digest) == busybox_image.digest


def test_bearer_token_auth_anonymous_and_credentialed(
    token_registry: Registry, token_server: TokenServer, busybox_image: BuiltImage, home: Path
) -> None:
    token_registry.push(busybox_image.layout, "v1", "private/img:v1")
    token_registry.push(busybox_image.layout, "v1", "public/img:v1")
    anon = ImageService(home / "anon", insecure(token_registry))
    # An anonymous token grants public/* only (our token server's policy).
    assert str(anon.pull(f"{token_registry.host}/public/img:v1").digest) == busybox_image.digest
    with pytest.raises(AuthenticationError):
        anon.pull(f"{token_registry.host}/private/img:v1")
    settings = RegistryAccess(
        insecure=frozenset({token_registry.host}),
        configs={token_registry.host: RegistryConfig(Credentials("tokenuser", "tokenpass"))},
    )
    before = token_server.issued.count("tokenuser")
    image = ImageService(home / "user", settings).pull(f"{token_registry.host}/private/img:v1")
    assert str(image.digest) == busybox_image.digest
    # One token for the whole pull: cached per host and scope.
    assert token_server.issued.count("tokenuser") == before + 1


def test_https_with_test_ca_and_client_certificate(
    tls_registry: Registry, pki: Pki, busybox_image: BuiltImage, home: Path
) -> None:
    tls_registry.push(busybox_image.layout, "v1", "test/tls:v1")
    ref = f"{tls_registry.host}/test/tls:v1"
    assert tls_registry.client_cert is not None
    cert, key = tls_registry.client_cert
    # Without our CA the server certificate is not trusted.
    with pytest.raises(RegistryUnavailable, match="TLS"):
        ImageService(home / "noca", RegistryAccess(insecure=frozenset())).pull(ref)
    # With the CA but no client certificate the server refuses the handshake.
    ca_only = RegistryAccess(
        insecure=frozenset(),
        configs={tls_registry.host: RegistryConfig(transport=Transport(str(pki.ca_cert)))},
    )
    with pytest.raises(RegistryUnavailable):
        ImageService(home / "nocert", ca_only).pull(ref)
    full = RegistryAccess(
        insecure=frozenset(),
        configs={
            tls_registry.host: RegistryConfig(
                transport=Transport(str(pki.ca_cert), str(cert), str(key))
            )
        },
    )
    image = ImageService(home / "full", full).pull(ref)
    assert str(image.digest) == busybox_image.digest


def test_insecure_registry_over_plain_http_only_when_configured(
    registry: Registry, busybox_image: BuiltImage, home: Path
) -> None:
    registry.push(busybox_image.layout, "v1", "test/insecure:v1")
    ref = f"{registry.host}/test/insecure:v1"
    # Not configured insecure: HTTPS is tried and fails against a plain-HTTP server.
    with pytest.raises(RegistryUnavailable):
        ImageService(home / "secure", RegistryAccess(insecure=frozenset())).pull(ref)
    image = ImageService(home / "insecure", insecure(registry)).pull(ref)
    assert str(image.digest) == busybox_image.digest
