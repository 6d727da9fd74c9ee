"""The image service: its one ocicrypt seam (cryptography loads only for encrypted images),
the listing of damaged image records, and what it reuses between calls (parsed configs
and manifests by digest; records while their file is unchanged)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ocirt.errors import DigestMismatch, ImageError, ImageNotFound
from ocirt.image.content.store import RECORD_SETTLE_NS, ImageRecord
from ocirt.image.manifest import Platform
from ocirt.image.reference import Digest
from ocirt.image.service import ImageService

_DAEMON_IMAGE_MODULES = (
    "ocirt.image.service",
    "ocirt.image.reference",
    "ocirt.image.manifest",
    "ocirt.image.registry.auth",
    "ocirt.image.registry.client",
    "ocirt.image.content.store",
    "ocirt.image.content.layout",
    "ocirt.image.content.pipeline",
    "ocirt.image.rootfs.unpack",
    "ocirt.image.rootfs.snapshot",
)


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_the_image_service_does_not_load_cryptography() -> None:
    # Devices are small: the daemon imports ocirt.image at start without paying for crypto.
    imports = "; ".join(f"import {m}" for m in _DAEMON_IMAGE_MODULES)
    code = f"import sys; {imports}; print('cryptography' in sys.modules)"
    assert _run(code) == "False"


def test_the_seam_loads_ocicrypt_and_cryptography() -> None:
    code = (
        "import sys; from ocirt.image import service; "
        "print('cryptography' in sys.modules, 'ocirt.image.ocicrypt.layer' in sys.modules); "
        "layer = service.ocicrypt(); "
        "print('cryptography' in sys.modules, layer.__name__)"
    )
    assert _run(code).splitlines() == ["False False", "True ocirt.image.ocicrypt.layer"]


# ---- damaged image records are reported, not dropped ----

CONFIG = json.dumps(
    {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
).encode()


def _digest(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def _put_image(
    service: ImageService, reference: str, config: bytes = CONFIG, manifest: bytes | None = None
) -> Path:
    manifest = manifest if manifest is not None else f"manifest of {reference}".encode()
    service.store.put_blob(manifest, _digest(manifest))
    service.store.put_blob(config, _digest(config))
    record = ImageRecord(
        reference, _digest(manifest), "m", _digest(config), (), Platform("linux", "amd64"), 1, 1
    )
    service.store.put_record(record)
    return service.store.root / "records" / service.store.record_name(reference)


def test_damaged_records_are_listed_with_the_reason_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = ImageService(tmp_path)
    _put_image(service, "example.org/good:1")
    garbled = _put_image(service, "example.org/garbled:1")
    garbled.write_bytes(garbled.read_bytes()[:40])  # cut by a power cut
    no_layers = _put_image(service, "example.org/nolayers:1")
    doc = json.loads(no_layers.read_bytes())
    del doc["layers"]
    no_layers.write_text(json.dumps(doc))
    no_config = _put_image(service, "example.org/noconfig:1", config=CONFIG + b" ")
    service.store.blob_path(_digest(CONFIG + b" ")).unlink()

    with caplog.at_level(logging.WARNING, logger="ocirt.image.service"):
        listing = service.listing()

    assert [image.reference for image in listing.images] == ["example.org/good:1"]
    damaged = {item.name: item for item in listing.damaged}
    assert set(damaged) == {garbled.name, no_layers.name, no_config.name}
    assert damaged[garbled.name].reference is None
    assert damaged[garbled.name].reason.startswith("not JSON")
    assert damaged[no_layers.name].reference == "example.org/nolayers:1"
    assert "layers" in damaged[no_layers.name].reason
    assert damaged[no_config.name].reason.startswith("config: blob sha256:")
    for item in listing.damaged:
        assert f"image record {item.name}" in caplog.text
        assert item.reason in caplog.text
    assert [image.reference for image in service.images()] == ["example.org/good:1"]

    service.remove_damaged(garbled.name)
    assert not garbled.exists()
    assert {item.name for item in service.listing().damaged} == {no_layers.name, no_config.name}
    with pytest.raises(ImageError):
        service.remove_damaged("../../etc/passwd")


def test_ensure_pulls_again_over_a_garbled_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ImageService(tmp_path)
    garbled = _put_image(service, "example.org/app:1")
    garbled.write_bytes(b"\0" * 16)
    pulled: list[str] = []
    monkeypatch.setattr(
        service, "pull", lambda ref, keys=None, progress=None, deadline=None: pulled.append(ref)
    )
    service.ensure("example.org/app:1")
    assert pulled == ["example.org/app:1"]


# ---- what the service reuses between calls ----


def _config(env: str) -> bytes:
    doc = json.loads(CONFIG)
    doc["config"] = {"Env": [env]}
    return json.dumps(doc).encode()


ENCRYPTED_LAYER = {
    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
    "digest": "sha256:" + "1" * 64,
    "size": 10,
    "annotations": {"org.opencontainers.image.enc.keys.jwe": "d3JhcHBlZA=="},
}


def _manifest(config: bytes, layers: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(_digest(config)),
                "size": len(config),
            },
            "layers": layers,
        }
    ).encode()


def _settled(record_file: Path) -> None:
    """Date a record file back past the store's settle window (a record a minute old)."""
    old = time.time_ns() - 10 * RECORD_SETTLE_NS
    os.utime(record_file, ns=(old, old))


class _BlobReads:
    def __init__(self, service: ImageService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.digests: list[Digest] = []
        real = service.store.read_blob

        def read_blob(digest: Digest, limit: int = 64 << 20) -> bytes:
            self.digests.append(digest)
            return real(digest, limit)

        monkeypatch.setattr(service.store, "read_blob", read_blob)


def test_get_parses_a_config_once_and_equals_a_cold_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ImageService(tmp_path)
    manifest = _manifest(_config("A=1"), [])
    _settled(_put_image(service, "example.org/app:1", _config("A=1"), manifest))
    reads = _BlobReads(service, monkeypatch)
    first = service.get("example.org/app:1")
    assert reads.digests == [_digest(_config("A=1"))]
    assert service.get("example.org/app:1") == first
    assert service.ensure("example.org/app:1") == first  # authorise reads the manifest
    assert service.ensure("example.org/app:1") == first
    assert reads.digests == [_digest(_config("A=1")), _digest(manifest)]
    cold = ImageService(tmp_path).get("example.org/app:1")
    assert first == cold
    assert first.config.execution.env == ("A=1",)


def test_a_record_replaced_on_disk_is_seen_by_the_next_get(tmp_path: Path) -> None:
    service = ImageService(tmp_path)
    _settled(_put_image(service, "example.org/app:1", _config("A=1")))
    before = service.get("example.org/app:1")
    # Re-pulled by another process (the pull helper): a new manifest and config.
    record_file = _put_image(ImageService(tmp_path), "example.org/app:1", _config("A=2"), b"v2")
    _settled(record_file)
    after = service.get("example.org/app:1")
    assert after.digest == _digest(b"v2") != before.digest
    assert after.config.execution.env == ("A=2",)


@pytest.mark.parametrize("remover", ["this service", "another process"])
def test_a_removed_image_is_not_found_after_having_been_cached(
    tmp_path: Path, remover: str
) -> None:
    service = ImageService(tmp_path)
    _settled(_put_image(service, "example.org/app:1"))
    service.get("example.org/app:1")
    assert service.present("example.org/app:1")
    (service if remover == "this service" else ImageService(tmp_path)).remove("example.org/app:1")
    with pytest.raises(ImageNotFound):
        service.get("example.org/app:1")
    assert not service.present("example.org/app:1")


def test_a_corrupted_config_blob_is_refused(tmp_path: Path) -> None:
    service = ImageService(tmp_path)
    _put_image(service, "example.org/garbled:1", _config("A=1"))
    service.store.blob_path(_digest(_config("A=1"))).write_bytes(b"\0garbled")
    with pytest.raises(ImageError):
        service.get("example.org/garbled:1")
    # Well-formed but not the bytes of its digest: the cache key would lie.
    _put_image(service, "example.org/swapped:1", _config("B=1"))
    service.store.blob_path(_digest(_config("B=1"))).write_bytes(_config("B=2"))
    with pytest.raises(DigestMismatch):
        service.get("example.org/swapped:1")


def test_listing_reports_a_config_blob_lost_after_it_was_parsed(tmp_path: Path) -> None:
    service = ImageService(tmp_path)
    record_file = _put_image(service, "example.org/app:1", _config("A=1"))
    service.get("example.org/app:1")
    service.store.blob_path(_digest(_config("A=1"))).unlink()
    listing = service.listing()
    assert listing.images == []
    assert [item.name for item in listing.damaged] == [record_file.name]


def test_encrypted_layers_are_parsed_once_shared_read_only_and_equal_a_cold_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = _manifest(CONFIG, [ENCRYPTED_LAYER])
    service = ImageService(tmp_path)
    _put_image(service, "example.org/enc:1", manifest=manifest)
    image = service.get("example.org/enc:1")
    reads = _BlobReads(service, monkeypatch)
    first = service.encrypted_layers(image)
    assert service.encrypted_layers(image) is first
    assert reads.digests == [_digest(manifest)]
    assert [dict(a) for a in first] == [ENCRYPTED_LAYER["annotations"]]
    cold = ImageService(tmp_path).encrypted_layers(image)
    assert [dict(a) for a in cold] == [dict(a) for a in first]
    with pytest.raises(TypeError):
        first[0]["org.opencontainers.image.enc.keys.jwe"] = "changed"  # type: ignore[index]


def test_a_corrupted_manifest_blob_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(CONFIG, [ENCRYPTED_LAYER])
    service = ImageService(tmp_path)
    _put_image(service, "example.org/enc:1", manifest=manifest)
    image = service.get("example.org/enc:1")
    plain = _manifest(CONFIG, [])  # valid, and it would hide the encrypted layer
    service.store.blob_path(_digest(manifest)).write_bytes(plain)
    with pytest.raises(DigestMismatch):
        service.encrypted_layers(image)


def test_concurrent_gets_agree(tmp_path: Path) -> None:
    service = ImageService(tmp_path)
    _settled(_put_image(service, "example.org/app:1", _config("A=1")))
    expected = ImageService(tmp_path).get("example.org/app:1")
    wrong: list[object] = []

    def work() -> None:
        for _ in range(200):
            got = service.get("example.org/app:1")
            if got != expected:
                wrong.append(got)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_reading_a_stored_image_maps_no_openssl(tmp_path: Path) -> None:
    # The create path of a present image: records, configs and manifests are checked
    # with CPython's own SHA-2 (tests/integration/things/test_footprint_e2e.py).
    manifest = _manifest(CONFIG, [])
    _put_image(ImageService(tmp_path), "example.org/app:1", CONFIG, manifest)
    code = (
        # As the daemon starts (ocirt.daemon.main): hashlib is imported on first use only.
        "import sys; from ocirt import deferred; deferred.defer('hashlib'); "
        "from pathlib import Path; from ocirt.image.service import ImageService; "
        f"s = ImageService(Path({str(tmp_path)!r})); image = s.ensure('example.org/app:1'); "
        "s.get('example.org/app:1'); s.encrypted_layers(image); "
        "print('_hashlib' in sys.modules)"
    )
    assert _run(code) == "False"
