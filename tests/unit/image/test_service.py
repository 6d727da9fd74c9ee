"""The image service: its one ocicrypt seam (cryptography loads only for encrypted images)
and the listing of damaged image records."""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from ocirt.errors import ImageError
from ocirt.image.content.store import ImageRecord
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


def _put_image(service: ImageService, reference: str, config: bytes = CONFIG) -> Path:
    manifest = f"manifest of {reference}".encode()
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
