"""ocicrypt interoperability with skopeo 1.9.3, in both directions.

A one-layer OCI layout (a gzipped tar holding bin/busybox) is written by hand, skopeo
encrypts it for JWE (RSA and EC), PKCS7 and PGP recipients, and every encrypted blob must
decrypt with ocirt back to the original layer byte for byte. Layers ocirt encrypts (JWE,
PKCS7) must decrypt with skopeo. Runs skopeo and gpg; needs no root.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt import layer as ocicrypt
from ocirt.image.ocicrypt.encrypt import (
    LayerEncrypter,
    encrypted_media_type,
    load_encrypt_recipients,
)

from .keyfiles import write_key_set

pytestmark = pytest.mark.integration

PASSWORD = "s3cret:with-colon"
GPG_PASSPHRASE = "gpg-pass"


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str
    annotations: dict[str, str]
    blob: bytes


@dataclass(frozen=True)
class World:
    root: Path
    original: Layer
    keys: dict[str, Path]
    encrypted: dict[str, Layer]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = _sha256(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest, len(data)


def _make_layout(layout: Path) -> Layer:
    """A one-layer OCI image whose only file is a static busybox."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("bin")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        data = Path("/bin/busybox").read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(tar_bytes.getvalue(), compresslevel=1, mtime=0)
    layer_digest, layer_size = _write_blob(layout, layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "true"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha256(tar_bytes.getvalue())]},
    }
    config_digest, config_size = _write_blob(layout, json.dumps(config).encode())
    media_type = "application/vnd.oci.image.layer.v1.tar+gzip"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{"mediaType": media_type, "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = _write_blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": "base"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return Layer(media_type, layer_digest, {}, layer)


def _read_layer(layout: Path, tag: str) -> Layer:
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / entry["digest"].split(":", 1)[1]).read_bytes())
    (layer,) = manifest["layers"]
    blob = (blobs / layer["digest"].split(":", 1)[1]).read_bytes()
    return Layer(layer["mediaType"], layer["digest"], layer.get("annotations", {}), blob)


def _gpg(home: Path, *args: str, passphrase: str = "") -> None:
    subprocess.run(
        [
            *("gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"),
            *("--passphrase", passphrase, *args),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(home)},
    )


def _gpg_key(home: Path, email: str, passphrase: str, out: Path) -> Path:
    """An RSA key with an encryption subkey (skopeo needs one), exported as a secret ring."""
    _gpg(home, "--quick-gen-key", f"T <{email}>", "rsa2048", "sign", "never", passphrase=passphrase)
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-keys", email],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    _gpg(home, "--quick-add-key", fpr, "rsa2048", "encr", "never", passphrase=passphrase)
    _gpg(home, "--output", str(out), "--export-secret-keys", email, passphrase=passphrase)
    return out


def _skopeo(root: Path, tag: str, *recipients: str, gnupghome: Path) -> Layer:
    policy = root / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    args = [a for r in recipients for a in ("--encryption-key", r)]
    subprocess.run(
        [
            *("skopeo", "--policy", str(policy), "copy", *args),
            *(f"oci:{root / 'src'}:base", f"oci:{root / 'enc'}:{tag}"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(gnupghome)},
    )
    return _read_layer(root / "enc", tag)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp(f"ocicrypt-{uuid.uuid4().hex[:8]}")
    gnupghome = Path(f"/tmp/ocirt-gpg-test-{uuid.uuid4().hex[:8]}")
    gnupghome.mkdir(mode=0o700)
    try:
        (root / "src").mkdir()
        original = _make_layout(root / "src")
        keys = write_key_set(root, "ocirt-pkcs7-test")
        keys["gpg"] = _gpg_key(gnupghome, "plain@example.com", "", root / "gpg-plain.bin")
        keys["gpg_pw"] = _gpg_key(gnupghome, "pw@example.com", GPG_PASSPHRASE, root / "gpg-pw.bin")
        # Legacy "Proc-Type: 4,ENCRYPTED" PEM: the protected form ocicrypt itself reads.
        rsa_key = serialization.load_pem_private_key(keys["rsa"].read_bytes(), None)
        protected = rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
        assert b"Proc-Type: 4,ENCRYPTED" in protected
        keys["rsa_pw"] = root / "rsa_pw.pem"
        keys["rsa_pw"].write_bytes(protected)
        encrypted = {
            "jwe_rsa": _skopeo(root, "jwe-rsa", f"jwe:{keys['rsa_pub']}", gnupghome=gnupghome),
            "jwe_ec": _skopeo(root, "jwe-ec", f"jwe:{keys['ec_pub']}", gnupghome=gnupghome),
            "pkcs7": _skopeo(root, "pkcs7", f"pkcs7:{keys['p7_cert']}", gnupghome=gnupghome),
            "pgp": _skopeo(root, "pgp", "pgp:plain@example.com", gnupghome=gnupghome),
            "pgp_pw": _skopeo(root, "pgp-pw", "pgp:pw@example.com", gnupghome=gnupghome),
            "multi": _skopeo(
                root,
                "multi",
                f"jwe:{keys['rsa_pub']}",
                f"jwe:{keys['ec_pub']}",
                f"pkcs7:{keys['p7_cert']}",
                "pgp:plain@example.com",
                gnupghome=gnupghome,
            ),
        }
        yield World(root, original, keys, encrypted)
    finally:
        for action in (["--kill", "gpg-agent"], ["--remove-socketdir"]):
            subprocess.run(
                ["gpgconf", *action],
                env={**os.environ, "GNUPGHOME": str(gnupghome)},
                check=False,
                capture_output=True,
            )
        shutil.rmtree(gnupghome, ignore_errors=True)


def _decrypt(layer: Layer, keys: ocicrypt.DecryptKeys, chunk: int = 65536) -> bytes:
    cipher = ocicrypt.open_layer(layer.annotations, keys)
    out = bytearray()
    for start in range(0, len(layer.blob), chunk):
        out += cipher.update(layer.blob[start : start + chunk])
    cipher.finalize()
    assert cipher.plain_digest == _sha256(bytes(out))
    return bytes(out)


def _assert_restores(world: World, layer: Layer, keys: ocicrypt.DecryptKeys) -> None:
    assert ocicrypt.is_encrypted(layer.media_type)
    assert layer.blob != world.original.blob
    plain = _decrypt(layer, keys)
    assert plain == world.original.blob
    assert _sha256(plain) == world.original.digest
    assert ocicrypt.decrypted_media_type(layer.media_type) == world.original.media_type
    assert ocicrypt.plain_annotations(layer.annotations) == {}


@pytest.mark.parametrize(
    ("layer_name", "key_args", "recipients"),
    [
        ("jwe_rsa", ["{rsa}"], []),
        ("jwe_rsa", ["{rsa_pw}:" + PASSWORD], []),
        ("jwe_rsa", ["{rsa_pw}:pass=" + PASSWORD], []),
        ("jwe_ec", ["{ec}"], []),
        ("pkcs7", ["{p7}"], ["pkcs7:{p7_cert}"]),
        ("pkcs7", ["{p7}", "{p7_cert}"], []),
        ("pkcs7", ["{p7}"], []),
        ("pgp", ["{gpg}"], []),
        ("pgp_pw", ["{gpg_pw}:" + GPG_PASSPHRASE], []),
        ("multi", ["{rsa}"], []),
        ("multi", ["{ec}"], []),
        ("multi", ["{p7}"], ["pkcs7:{p7_cert}"]),
        ("multi", ["{gpg}"], []),
        ("multi", ["{other}", "{ec}"], []),
    ],
)
def test_skopeo_layer_decrypts_to_original(
    world: World, layer_name: str, key_args: list[str], recipients: list[str]
) -> None:
    paths = {name: str(path) for name, path in world.keys.items()}
    keys = ocicrypt.load_decrypt_keys(
        [arg.format(**paths) for arg in key_args], [r.format(**paths) for r in recipients]
    )
    layer = world.encrypted[layer_name]
    ocicrypt.check_authorised([layer.annotations], keys)
    _assert_restores(world, layer, keys)


def test_multi_recipient_layer_carries_every_protocol(world: World) -> None:
    annotations = world.encrypted["multi"].annotations
    wrapped = {k.rsplit(".", 1)[1] for k in annotations if ".enc.keys." in k}
    assert wrapped == {"jwe", "pkcs7", "pgp"}


def test_password_from_file_with_trailing_newline(world: World) -> None:
    pwfile = world.root / "pw.txt"
    pwfile.write_text(PASSWORD + "\n")
    keys = ocicrypt.load_decrypt_keys([f"{world.keys['rsa_pw']}:file={pwfile}"], [])
    _assert_restores(world, world.encrypted["jwe_rsa"], keys)


def test_password_from_descriptor(world: World) -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, PASSWORD.encode())
        keys = ocicrypt.load_decrypt_keys([f"{world.keys['rsa_pw']}:fd={read_end}"], [])
    finally:
        os.close(read_end)
        os.close(write_end)
    _assert_restores(world, world.encrypted["jwe_rsa"], keys)


def test_wrong_password_is_refused(world: World) -> None:
    with pytest.raises(DecryptError, match="wrong password"):
        ocicrypt.load_decrypt_keys([f"{world.keys['rsa_pw']}:nope"], [])
    with pytest.raises(DecryptError, match="no password"):
        ocicrypt.load_decrypt_keys([str(world.keys["rsa_pw"])], [])


@pytest.mark.parametrize("layer_name", ["jwe_rsa", "jwe_ec", "pkcs7", "multi"])
def test_wrong_key_opens_nothing(world: World, layer_name: str) -> None:
    keys = ocicrypt.load_decrypt_keys([str(world.keys["other"])], [])
    layer = world.encrypted[layer_name]
    with pytest.raises(DecryptError, match="no key opens the layer"):
        ocicrypt.open_layer(layer.annotations, keys)
    with pytest.raises(DecryptError, match="not authorised to decrypt layer 1"):
        ocicrypt.check_authorised([{}, layer.annotations], keys)


def test_wrong_gpg_ring_and_passphrase(world: World) -> None:
    other_ring = ocicrypt.load_decrypt_keys([str(world.keys["gpg"])], [])
    with pytest.raises(DecryptError, match="no GPG key opens"):
        ocicrypt.open_layer(world.encrypted["pgp_pw"].annotations, other_ring)
    bad_pass = ocicrypt.load_decrypt_keys([f"{world.keys['gpg_pw']}:wrong"], [])
    with pytest.raises(DecryptError, match="passphrase"):
        ocicrypt.open_layer(world.encrypted["pgp_pw"].annotations, bad_pass)


def test_key_of_another_protocol_is_reported_missing(world: World) -> None:
    keys = ocicrypt.load_decrypt_keys([str(world.keys["gpg"])], [])
    with pytest.raises(DecryptError, match=r"missing private key.*wrapped for jwe"):
        ocicrypt.open_layer(world.encrypted["jwe_rsa"].annotations, keys)


def test_tampered_blob_fails_at_finalize(world: World) -> None:
    layer = world.encrypted["jwe_rsa"]
    keys = ocicrypt.load_decrypt_keys([str(world.keys["rsa"])], [])
    tampered = bytearray(layer.blob)
    tampered[len(tampered) // 2] ^= 0x01
    cipher = ocicrypt.open_layer(layer.annotations, keys)
    cipher.update(bytes(tampered))
    with pytest.raises(DecryptError, match="HMAC mismatch"):
        cipher.finalize()


def _write_encrypted_layout(world: World, dest: Path, recipients: list[str]) -> None:
    """Our encryption of the source image, written as an OCI layout with tag `ours`."""
    shutil.copytree(world.root / "src", dest)
    index = json.loads((dest / "index.json").read_text())
    blobs = dest / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":", 1)[1]).read_bytes())
    encrypter = LayerEncrypter(load_encrypt_recipients(recipients))
    ciphertext = encrypter.update(world.original.blob)
    annotations = encrypter.finalize()
    digest, size = _write_blob(dest, ciphertext)
    manifest["layers"] = [
        {
            "mediaType": encrypted_media_type(world.original.media_type),
            "digest": digest,
            "size": size,
            "annotations": annotations,
        }
    ]
    manifest_digest, manifest_size = _write_blob(dest, json.dumps(manifest).encode())
    index["manifests"] = [
        {
            "mediaType": manifest["mediaType"],
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "ours"},
        }
    ]
    (dest / "index.json").write_text(json.dumps(index))


@pytest.mark.parametrize(
    ("recipients", "decryption_keys"),
    [
        (["jwe:{rsa_pub}"], ["{rsa}"]),
        (["jwe:{ec_pub}"], ["{ec}"]),
        (["pkcs7:{p7_cert}"], ["{p7}", "{p7_cert}"]),
        (["jwe:{rsa_pub}", "jwe:{ec_pub}", "pkcs7:{p7_cert}"], ["{ec}"]),
        (["jwe:{rsa_pub}", "jwe:{ec_pub}", "pkcs7:{p7_cert}"], ["{p7}", "{p7_cert}"]),
    ],
)
def test_skopeo_decrypts_what_ocirt_encrypts(
    world: World, tmp_path: Path, recipients: list[str], decryption_keys: list[str]
) -> None:
    paths = {name: str(path) for name, path in world.keys.items()}
    ours = tmp_path / "ours"
    _write_encrypted_layout(world, ours, [r.format(**paths) for r in recipients])
    policy = tmp_path / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    keys = [a for k in decryption_keys for a in ("--decryption-key", k.format(**paths))]
    subprocess.run(
        [
            *("skopeo", "--policy", str(policy), "copy", *keys),
            *(f"oci:{ours}:ours", f"oci:{tmp_path / 'dec'}:plain"),
        ],
        check=True,
        capture_output=True,
    )
    decrypted = _read_layer(tmp_path / "dec", "plain")
    assert decrypted.blob == world.original.blob
    assert decrypted.digest == world.original.digest
    assert decrypted.media_type == world.original.media_type
    assert decrypted.annotations == {}


def test_skopeo_refuses_our_layer_without_the_key(world: World, tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    _write_encrypted_layout(world, ours, [f"jwe:{world.keys['rsa_pub']}"])
    policy = tmp_path / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    result = subprocess.run(
        [
            *("skopeo", "--policy", str(policy), "copy"),
            *("--decryption-key", str(world.keys["other"])),
            *(f"oci:{ours}:ours", f"oci:{tmp_path / 'dec'}:plain"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "decrypt" in result.stderr.lower()
