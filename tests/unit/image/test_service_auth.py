"""ImageService authorisation of encrypted images: keys are checked before any layer is
fetched or reused, and again for an image already on the device (Kanto checks before
unpack and before each start).

The registry is a scripted in-memory client (a fake for this logic only; the real registry
runs in tests/integration/image/test_encrypted_e2e.py); layers are encrypted with our
own LayerEncrypter for a fresh RSA key, unpacked into a store under tmp_path.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ocirt.errors import DecryptError
from ocirt.image import service as service_module
from ocirt.image.ocicrypt.encrypt import EncryptRecipients, LayerEncrypter
from ocirt.image.ocicrypt.keys import DecryptKeys
from ocirt.image.reference import Digest, Reference, parse_digest
from ocirt.image.registry.client import RegistryClient
from ocirt.image.service import ImageService
from ocirt.things.protocol import DittoError

LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
PUBOPTS = "org.opencontainers.image.enc.pubopts"


def _digest(data: bytes) -> Digest:
    return parse_digest("sha256:" + hashlib.sha256(data).hexdigest())


class ScriptedRegistry:
    """Serves manifests by repository path and blobs by digest; counts layer fetches."""

    def __init__(self) -> None:
        self.manifests: dict[str, bytes] = {}
        self.blobs: dict[Digest, bytes] = {}
        self.streamed: list[Digest] = []

    def get_manifest(
        self, ref: Reference, obj: str | None = None, *, control: object = None
    ) -> tuple[bytes, str, Digest]:
        body = self.manifests[ref.path]
        return body, MANIFEST, _digest(body)

    def get_blob(
        self, ref: Reference, digest: Digest, limit: int, *, control: object = None
    ) -> bytes:
        return self.blobs[digest]

    def iter_blob(
        self, ref: Reference, digest: Digest, size: int, offset: int = 0, *, control: object = None
    ) -> Iterator[bytes]:
        self.streamed.append(digest)
        yield self.blobs[digest][offset:]

    def add_image(
        self, path: str, layer: bytes, media_type: str, annotations: dict[str, str], diff: bytes
    ) -> Digest:
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/bin/sh"]},
                "rootfs": {"type": "layers", "diff_ids": [str(_digest(diff))]},
            }
        ).encode()
        self.blobs[_digest(config)] = config
        self.blobs[_digest(layer)] = layer
        descriptor: dict[str, object] = {
            "mediaType": media_type,
            "digest": str(_digest(layer)),
            "size": len(layer),
        }
        if annotations:
            descriptor["annotations"] = annotations
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": str(_digest(config)), "size": len(config)},
            "layers": [descriptor],
        }
        self.manifests[path] = json.dumps(manifest).encode()
        return _digest(layer)


def _layer_tar(content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("marker")
        info.size = len(content)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _encrypt(plain: bytes, key: rsa.RSAPrivateKey) -> tuple[bytes, dict[str, str]]:
    encrypter = LayerEncrypter(EncryptRecipients(jwe=(key.public_key(),)))
    return encrypter.update(plain), encrypter.finalize()


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


class World:
    def __init__(self, tmp_path: Path, right: rsa.RSAPrivateKey) -> None:
        self.registry = ScriptedRegistry()
        self.service = ImageService(
            tmp_path / "home",
            client=cast(RegistryClient, self.registry),
            use_overlay=False,
        )
        self.plain_tar = _layer_tar(b"secret content\n")
        ciphertext, annotations = _encrypt(self.plain_tar, right)
        self.annotations = annotations
        self.plain_layer = self.registry.add_image(
            "test/plain", self.plain_tar, LAYER_TAR, {}, self.plain_tar
        )
        self.enc_layer = self.registry.add_image(
            "test/enc", ciphertext, LAYER_TAR + "+encrypted", annotations, self.plain_tar
        )


@pytest.fixture
def world(tmp_path: Path, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> World:
    return World(tmp_path, rsa_keys[0])


ENC = "127.0.0.1:5000/test/enc:v1"
PLAIN = "127.0.0.1:5000/test/plain:v1"


def test_a_plain_image_needs_no_keys(world: World) -> None:
    image = world.service.ensure(PLAIN)
    assert world.service.encrypted_layers(image) == ()
    world.service.authorise(image, None)
    world.service.authorise(image, DecryptKeys())
    assert world.service.ensure(PLAIN).digest == image.digest


@pytest.mark.parametrize("wrong", [None, DecryptKeys(), "other"])
def test_keys_that_do_not_open_the_image_are_refused_before_any_fetch(
    world: World, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey], wrong: object
) -> None:
    keys = DecryptKeys(private_keys=(rsa_keys[1],)) if wrong == "other" else wrong
    with pytest.raises(DecryptError, match=re.escape(ENC)) as info:
        world.service.ensure(ENC, cast(DecryptKeys | None, keys))
    assert DittoError.from_exception(info.value).to_value()["status"] == 500
    assert world.registry.streamed == []
    assert not world.service.store.has_blob(world.enc_layer)
    assert world.service.store.get_record(ENC) is None
    assert list(world.service.store.snapshots()) == []


def test_an_image_on_the_device_is_authorised_at_every_ensure(
    world: World, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    right = DecryptKeys(private_keys=(rsa_keys[0],))
    wrong = DecryptKeys(private_keys=(rsa_keys[1],))
    image = world.service.ensure(ENC, right)
    snapshot = world.service.store.snapshot_path(image.chain_ids[-1])
    assert (snapshot / "marker").read_bytes() == b"secret content\n"
    assert world.service.encrypted_layers(image) == (world.annotations,)
    record = world.service.store.get_record(ENC)
    assert record is not None
    for keys in (None, wrong):
        with pytest.raises(DecryptError):
            world.service.ensure(ENC, keys)
        with pytest.raises(DecryptError):
            world.service.authorise(image, keys)
    # A refused container does not count as a use of the image.
    assert world.service.store.get_record(ENC) == record
    # Nothing was cached by the refusals or by the first success: the right key still opens
    # it, and each check unwraps again.
    assert world.service.ensure(ENC, right).digest == image.digest
    world.service.authorise(image, right)
    with pytest.raises(DecryptError):
        world.service.authorise(image, None)
    assert world.registry.streamed == [world.enc_layer]


def test_layers_unpacked_for_another_image_do_not_bypass_the_keys(
    world: World, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    # The plain twin has the same DiffID, so its snapshot would serve the encrypted image.
    plain = world.service.ensure(PLAIN)
    with pytest.raises(DecryptError, match="no decryption keys"):
        world.service.ensure(ENC)
    with pytest.raises(DecryptError):
        world.service.ensure(ENC, DecryptKeys(private_keys=(rsa_keys[1],)))
    assert world.service.store.get_record(ENC) is None
    image = world.service.ensure(ENC, DecryptKeys(private_keys=(rsa_keys[0],)))
    assert image.chain_ids == plain.chain_ids


def test_an_encrypted_layer_without_wrapped_keys_is_refused(
    world: World, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    stripped = {k: v for k, v in world.annotations.items() if ".enc.keys." not in k}
    assert stripped  # pubopts remain
    ciphertext = world.registry.blobs[world.enc_layer]
    world.registry.add_image(
        "test/nokeys", ciphertext, LAYER_TAR + "+encrypted", stripped, world.plain_tar
    )
    with pytest.raises(DecryptError, match="no wrapped keys"):
        world.service.ensure(
            "127.0.0.1:5000/test/nokeys:v1", DecryptKeys(private_keys=(rsa_keys[0],))
        )
    assert world.registry.streamed == []


def test_a_layer_the_keys_open_but_cannot_decrypt_is_refused_every_time(
    world: World, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> None:
    # The wrapped key opens (authorised), but the public options lack the HMAC.
    broken = dict(world.annotations)
    broken[PUBOPTS] = base64.b64encode(b'{"cipher":"AES_256_CTR_HMAC_SHA256"}').decode()
    ciphertext = world.registry.blobs[world.enc_layer]
    world.registry.add_image(
        "test/nohmac", ciphertext, LAYER_TAR + "+encrypted", broken, world.plain_tar
    )
    keys = DecryptKeys(private_keys=(rsa_keys[0],))
    # The refusals are kept alive as a caller's traceback would keep them; a lock held by
    # a leaked file would then stay held.
    refusals = []
    for _ in range(2):  # the second pull must not wait on a lock the first one left
        with pytest.raises(DecryptError, match="HMAC") as info:
            world.service.ensure("127.0.0.1:5000/test/nohmac:v1", keys)
        refusals.append(info)
    assert world.service.store.get_record("127.0.0.1:5000/test/nohmac:v1") is None
    assert list(world.service.store.snapshots()) == []


def test_last_use_is_refreshed_at_most_once_a_minute(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.service.ensure(PLAIN)
    first = world.service.store.get_record(PLAIN)
    assert first is not None
    world.service.ensure(PLAIN)
    assert world.service.store.get_record(PLAIN) == first  # within the minute: no write
    later = first.last_used + service_module.LAST_USE_RESOLUTION + 1
    monkeypatch.setattr(service_module.time, "time", lambda: later)
    world.service.ensure(PLAIN)
    refreshed = world.service.store.get_record(PLAIN)
    assert refreshed is not None and refreshed.last_used == later


def test_no_sweep_runs_while_an_image_is_being_imported(world: World) -> None:
    # The layer is stored before the record that keeps it: a sweep in between would delete
    # it. The registry runs a sweep (with every image expired) in the middle of the pull.
    sweeps: list[object] = []
    serve = world.registry.iter_blob

    def iter_blob_and_sweep(
        ref: Reference, digest: Digest, size: int, offset: int = 0, *, control: object = None
    ) -> Iterator[bytes]:
        sweeps.append(world.service.gc(set(), 0.0))
        yield from serve(ref, digest, size, offset)

    world.registry.iter_blob = iter_blob_and_sweep  # type: ignore[method-assign]
    image = world.service.ensure(PLAIN)
    assert sweeps == [None]
    record = world.service.store.get_record(PLAIN)
    assert record is not None
    assert all(world.service.store.has_blob(d) for d in (record.digest, record.config))
    assert all(world.service.store.has_snapshot(chain) for chain in image.chain_ids)
    assert world.service.ensure(PLAIN).digest == image.digest
    # Once the import is done, the same sweep removes the image no container uses.
    report = world.service.gc(set(), 0.0)
    assert report is not None and report.images == (PLAIN,)
