"""encrypt_layout: layouts it writes decrypt, with ocirt's own ocicrypt, to the source layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ocirt.cli.main import main
from ocirt.errors import DecryptError, DigestMismatch, ImageError, ImageNotFound, InvalidArgument
from ocirt.image.manifest import Platform
from ocirt.image.ocicrypt import layer as ocicrypt
from ocirt.image.ocicrypt.encrypt import EncryptRecipients
from ocirt.image.ocicrypt.encrypt_layout import encrypt_layout
from ocirt.image.ocicrypt.keys import DecryptKeys

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
REF_NAME = "org.opencontainers.image.ref.name"
AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


# ---- building source layouts ----


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":")
    return layout / "blobs" / algorithm / hexdigest


def put(layout: Path, data: bytes) -> dict[str, Any]:
    digest = sha256(data)
    path = blob_path(layout, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def layer_tar(name: str) -> bytes:
    data = os.urandom(50_000)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@dataclass(frozen=True)
class Image:
    manifest: dict[str, Any]
    descriptor: dict[str, Any]
    config: bytes


def write_image(
    layout: Path,
    layer_types: list[str],
    *,
    manifest_type: str = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    architecture: str = "amd64",
    layer_annotations: dict[int, dict[str, str]] | None = None,
) -> Image:
    tars = [layer_tar(f"file{i}") for i in range(len(layer_types))]
    layers = []
    for i, (media_type, plain) in enumerate(zip(layer_types, tars, strict=True)):
        data = gzip.compress(plain, mtime=0) if media_type.endswith("gzip") else plain
        entry = {"mediaType": media_type, **put(layout, data)}
        if layer_annotations and i in layer_annotations:
            entry["annotations"] = layer_annotations[i]
        layers.append(entry)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(t) for t in tars]},
        }
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, **put(layout, config)},
        "layers": layers,
        "annotations": {"org.example.kept": "yes"},
    }
    descriptor = {"mediaType": manifest_type, **put(layout, json.dumps(manifest).encode())}
    return Image(manifest, descriptor, config)


def write_index(layout: Path, entries: list[tuple[str | None, dict[str, Any]]]) -> None:
    manifests = []
    for tag, descriptor in entries:
        entry = dict(descriptor)
        if tag is not None:
            entry["annotations"] = {REF_NAME: tag}
        manifests.append(entry)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))


def source(tmp_path: Path, layer_types: list[str], **kwargs: Any) -> tuple[Path, Image]:
    layout = tmp_path / "src"
    image = write_image(layout, layer_types, **kwargs)
    write_index(layout, [("v1", image.descriptor)])
    return layout, image


# ---- reading what encrypt_layout wrote ----


def read_tagged(layout: Path, tag: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(index.json entry, manifest) for `tag`, checking the entry against the manifest blob."""
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    raw = blob_path(layout, entry["digest"]).read_bytes()
    assert entry["digest"] == sha256(raw)
    assert entry["size"] == len(raw)
    assert entry["mediaType"] == OCI_MANIFEST
    return entry, json.loads(raw)


def decrypt(
    layout: Path, layer: dict[str, Any], key: PrivateKey, *certs: x509.Certificate
) -> bytes:
    blob = blob_path(layout, layer["digest"]).read_bytes()
    assert layer["digest"] == sha256(blob)
    assert layer["size"] == len(blob)
    cipher = ocicrypt.open_layer(layer["annotations"], DecryptKeys((key,), certs))
    plain = cipher.update(blob)
    cipher.finalize()
    return plain


def original(src: Path, image: Image, i: int) -> bytes:
    return blob_path(src, image.manifest["layers"][i]["digest"]).read_bytes()


def no_temp_files(layout: Path) -> bool:
    return not [p for p in layout.rglob("*") if p.name.startswith(".")]


# ---- keys ----


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwe(rsa_key: rsa.RSAPrivateKey) -> EncryptRecipients:
    return EncryptRecipients(jwe=(rsa_key.public_key(),))


# ---- tests ----


def test_every_layer_decrypts_to_its_original_blob(
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
    jwe: EncryptRecipients,
) -> None:
    src, image = source(tmp_path, [GZIP, TAR, GZIP], layer_annotations={2: {"org.x": "y"}})
    dest = tmp_path / "new" / "dest"
    digest = encrypt_layout(src, "v1", dest, "enc", jwe)

    entry, manifest = read_tagged(dest, "enc")
    assert entry["digest"] == str(digest)
    assert json.loads((dest / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["annotations"] == {"org.example.kept": "yes"}
    assert manifest["config"] == image.manifest["config"]
    assert blob_path(dest, manifest["config"]["digest"]).read_bytes() == image.config
    assert len(manifest["layers"]) == 3
    for i, layer in enumerate(manifest["layers"]):
        before = image.manifest["layers"][i]
        assert layer["mediaType"] == before["mediaType"] + "+encrypted"
        assert layer["digest"] != before["digest"]
        assert decrypt(dest, layer, rsa_key) == original(src, image, i)
        assert ocicrypt.plain_annotations(layer["annotations"]) == before.get("annotations", {})
        with pytest.raises(DecryptError, match="no key opens the layer"):
            decrypt(dest, layer, other_key)
    assert not blob_path(dest, image.descriptor["digest"]).exists()
    assert no_temp_files(dest)


def test_ec_jwe_and_pkcs7_recipients_each_open_every_layer(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, self_signed: Callable[..., x509.Certificate]
) -> None:
    src, image = source(tmp_path, [GZIP, GZIP])
    ec_key = ec.generate_private_key(ec.SECP384R1())
    cert = self_signed(rsa_key, "encrypt-test")
    recipients = EncryptRecipients(jwe=(ec_key.public_key(),), pkcs7=(cert,))
    encrypt_layout(src, "v1", tmp_path / "dest", "enc", recipients)
    _, manifest = read_tagged(tmp_path / "dest", "enc")
    for i, layer in enumerate(manifest["layers"]):
        assert {k.rsplit(".", 1)[1] for k in layer["annotations"] if ".enc.keys." in k} == {
            "jwe",
            "pkcs7",
        }
        assert decrypt(tmp_path / "dest", layer, ec_key) == original(src, image, i)
        assert decrypt(tmp_path / "dest", layer, rsa_key, cert) == original(src, image, i)


def test_docker_manifest_becomes_oci_with_the_same_config_blob(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, jwe: EncryptRecipients
) -> None:
    src, image = source(
        tmp_path,
        [DOCKER_GZIP, DOCKER_TAR],
        manifest_type=DOCKER_MANIFEST,
        config_type=DOCKER_CONFIG,
    )
    encrypt_layout(src, "v1", tmp_path / "dest", "enc", jwe, [0])
    _, manifest = read_tagged(tmp_path / "dest", "enc")
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"] == {**image.manifest["config"], "mediaType": OCI_CONFIG}
    assert blob_path(tmp_path / "dest", manifest["config"]["digest"]).read_bytes() == image.config
    first, second = manifest["layers"]
    assert first["mediaType"] == GZIP + "+encrypted"
    assert decrypt(tmp_path / "dest", first, rsa_key) == original(src, image, 0)
    assert second == {**image.manifest["layers"][1], "mediaType": TAR}


def test_index_is_followed_to_the_requested_platform(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, jwe: EncryptRecipients
) -> None:
    src = tmp_path / "src"
    images = {arch: write_image(src, [GZIP], architecture=arch) for arch in ("amd64", "arm64")}
    inner = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {**img.descriptor, "platform": {"os": "linux", "architecture": arch}}
            for arch, img in images.items()
        ],
    }
    outer = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_INDEX, **put(src, json.dumps(inner).encode())}],
    }
    write_index(src, [("multi", {"mediaType": OCI_INDEX, **put(src, json.dumps(outer).encode())})])
    for platform, tag in ((ARM64, "arm"), (AMD64, "amd")):
        encrypt_layout(src, "multi", tmp_path / "dest", tag, jwe, platform=platform)
        entry, manifest = read_tagged(tmp_path / "dest", tag)
        assert entry["platform"] == {"os": "linux", "architecture": platform.architecture}
        chosen = images[platform.architecture]
        assert manifest["config"] == chosen.manifest["config"]
        (layer,) = manifest["layers"]
        assert decrypt(tmp_path / "dest", layer, rsa_key) == original(src, chosen, 0)
    with pytest.raises(ImageError, match="no image for platform linux/s390x"):
        encrypt_layout(src, "multi", tmp_path / "d2", "x", jwe, platform=Platform("linux", "s390x"))


def test_only_the_selected_layers_are_encrypted(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, jwe: EncryptRecipients
) -> None:
    src, image = source(tmp_path, [GZIP, TAR, GZIP])
    dest = tmp_path / "dest"
    encrypt_layout(src, "v1", dest, "enc", jwe, [-1, 0])
    _, manifest = read_tagged(dest, "enc")
    first, middle, last = manifest["layers"]
    assert middle == image.manifest["layers"][1]
    assert blob_path(dest, middle["digest"]).read_bytes() == original(src, image, 1)
    assert decrypt(dest, first, rsa_key) == original(src, image, 0)
    assert decrypt(dest, last, rsa_key) == original(src, image, 2)
    for bad, message in (([3], "layer 3 does not exist"), ([-4], "layer -4"), ([], "no layers")):
        with pytest.raises(InvalidArgument, match=message):
            encrypt_layout(src, "v1", dest, "bad", jwe, bad)


def test_encrypted_layers_are_copied_as_they_are(
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
    jwe: EncryptRecipients,
) -> None:
    src, image = source(tmp_path, [GZIP, GZIP])
    encrypt_layout(src, "v1", tmp_path / "once", "v1", jwe, [0])
    _, once = read_tagged(tmp_path / "once", "v1")
    others = EncryptRecipients(jwe=(other_key.public_key(),))
    encrypt_layout(tmp_path / "once", "v1", tmp_path / "twice", "v1", others)
    _, twice = read_tagged(tmp_path / "twice", "v1")
    assert twice["layers"][0] == once["layers"][0]
    assert decrypt(tmp_path / "twice", twice["layers"][0], rsa_key) == original(src, image, 0)
    assert decrypt(tmp_path / "twice", twice["layers"][1], other_key) == original(src, image, 1)
    with pytest.raises(DecryptError):
        decrypt(tmp_path / "twice", twice["layers"][1], rsa_key)


def test_existing_layout_keeps_its_other_tags_and_replaces_the_same_tag(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, jwe: EncryptRecipients
) -> None:
    src, image = source(tmp_path, [GZIP])
    dest = tmp_path / "dest"
    first = encrypt_layout(src, "v1", dest, "a", jwe)
    second = encrypt_layout(src, "v1", dest, "b", jwe)
    third = encrypt_layout(src, None, dest, "a", jwe)
    assert len({first, second, third}) == 3  # a fresh layer key each time
    index = json.loads((dest / "index.json").read_text())
    tags = [m["annotations"][REF_NAME] for m in index["manifests"]]
    assert tags == ["b", "a"]
    assert read_tagged(dest, "a")[0]["digest"] == str(third)
    assert read_tagged(dest, "b")[0]["digest"] == str(second)
    # The source layout itself may be the destination: blobs are content-addressed.
    encrypt_layout(src, "v1", src, "v1-enc", jwe)
    _, manifest = read_tagged(src, "v1-enc")
    assert decrypt(src, manifest["layers"][0], rsa_key) == original(src, image, 0)
    assert read_tagged(src, "v1")[1] == image.manifest


def test_tar_source(tmp_path: Path, rsa_key: rsa.RSAPrivateKey, jwe: EncryptRecipients) -> None:
    src, image = source(tmp_path, [GZIP, TAR])
    archive = tmp_path / "src.tar"
    with tarfile.open(archive, "w") as tar:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(src)))
    encrypt_layout(archive, "v1", tmp_path / "dest", "enc", jwe)
    _, manifest = read_tagged(tmp_path / "dest", "enc")
    for i, layer in enumerate(manifest["layers"]):
        assert decrypt(tmp_path / "dest", layer, rsa_key) == original(src, image, i)


@pytest.mark.parametrize("victim", ["layer", "config", "manifest"])
def test_a_source_blob_that_lies_is_refused_and_leaves_no_trace(
    tmp_path: Path, jwe: EncryptRecipients, victim: str
) -> None:
    src, image = source(tmp_path, [GZIP, GZIP])
    digest = {
        "layer": image.manifest["layers"][1]["digest"],
        "config": image.manifest["config"]["digest"],
        "manifest": image.descriptor["digest"],
    }[victim]
    path = blob_path(src, digest)
    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 1
    path.write_bytes(bytes(tampered))
    dest = tmp_path / "dest"
    with pytest.raises(DigestMismatch):
        encrypt_layout(src, "v1", dest, "enc", jwe)
    assert not dest.exists()  # a destination the call created is removed again
    # In an existing layout the old index stays as it was and no temp file is left.
    (dest / "blobs").mkdir(parents=True)
    (dest / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (dest / "index.json").write_text('{"schemaVersion":2,"manifests":[]}')
    with pytest.raises(DigestMismatch):
        encrypt_layout(src, "v1", dest, "enc", jwe)
    assert (dest / "index.json").read_text() == '{"schemaVersion":2,"manifests":[]}'
    assert no_temp_files(dest)


def test_truncated_and_overlong_layers_are_refused(tmp_path: Path, jwe: EncryptRecipients) -> None:
    src, image = source(tmp_path, [GZIP])
    path = blob_path(src, image.manifest["layers"][0]["digest"])
    data = path.read_bytes()
    for wrong in (data[:-1], data + b"\0" * (1 << 21)):
        path.write_bytes(wrong)
        with pytest.raises(DigestMismatch):
            encrypt_layout(src, "v1", tmp_path / "dest", "enc", jwe)
        assert not (tmp_path / "dest").exists()


def test_choosing_the_source_image(tmp_path: Path, jwe: EncryptRecipients) -> None:
    src = tmp_path / "src"
    one = write_image(src, [GZIP])
    two = write_image(src, [TAR])
    write_index(src, [("one", one.descriptor), ("two", two.descriptor)])
    dest = tmp_path / "dest"
    with pytest.raises(ImageNotFound, match="no image tagged 'three'"):
        encrypt_layout(src, "three", dest, "x", jwe)
    with pytest.raises(InvalidArgument, match="holds 2 images"):
        encrypt_layout(src, None, dest, "x", jwe)
    encrypt_layout(src, "two", dest, "x", jwe)
    _, manifest = read_tagged(dest, "x")
    assert manifest["layers"][0]["mediaType"] == TAR + "+encrypted"


def test_refused_arguments(tmp_path: Path, jwe: EncryptRecipients) -> None:
    src, _ = source(tmp_path, [GZIP])
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgument, match="neither empty nor an OCI layout"):
        encrypt_layout(src, "v1", stranger, "x", jwe)
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]
    with pytest.raises(InvalidArgument, match="not a directory"):
        encrypt_layout(src, "v1", stranger / "notes.txt", "x", jwe)
    with pytest.raises(InvalidArgument, match="invalid destination tag"):
        encrypt_layout(src, "v1", tmp_path / "dest", "-bad tag", jwe)
    with pytest.raises(InvalidArgument, match="no encryption recipients"):
        encrypt_layout(src, "v1", tmp_path / "dest", "x", EncryptRecipients())
    assert not (tmp_path / "dest").exists()


def test_non_image_layers_are_refused(tmp_path: Path, jwe: EncryptRecipients) -> None:
    src, _ = source(tmp_path, ["application/vnd.example.thing"])
    with pytest.raises(ImageError, match="unsupported layer media type"):
        encrypt_layout(src, "v1", tmp_path / "dest", "x", jwe)


def test_cli_encrypts_and_reports_errors(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    src, image = source(tmp_path, [GZIP, GZIP])
    pub = tmp_path / "pub.pem"
    pub.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    dest = tmp_path / "dest"
    argv = ["image", "encrypt", "--recipient", f"jwe:{pub}", "--encrypt-layer", "-1"]
    assert main([*argv, f"{src}:v1", str(dest)]) == 0
    out = capsys.readouterr().out
    entry, manifest = read_tagged(dest, "v1")  # DEST's tag defaults to SRC's
    assert out == f"{dest}:v1 {entry['digest']}\n"
    assert manifest["layers"][0] == image.manifest["layers"][0]
    assert decrypt(dest, manifest["layers"][1], rsa_key) == original(src, image, 1)

    assert main([*argv, f"{src}:nope", f"{dest}:x"]) == 1
    assert capsys.readouterr().err == f"Error: no image tagged 'nope' in {src}\n"
    missing = ["image", "encrypt", "--recipient", f"jwe:{tmp_path / 'missing.pem'}"]
    assert main([*missing, f"{src}:v1", f"{dest}:x"]) == 1
    assert capsys.readouterr().err.startswith("Error: cannot read recipient file")
    assert main([*argv, f"{src}:", f"{dest}:x"]) == 1
    assert "want PATH[:TAG]" in capsys.readouterr().err
