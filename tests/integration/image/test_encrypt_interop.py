"""`ocirt image encrypt` output opens with skopeo 1.9.3 (containers/ocicrypt).

The busybox test image (four gzip layers) is encrypted by the real `ocirt` command for JWE
(RSA, EC) and PKCS7 recipients; `skopeo copy --decryption-key` must turn the layout back into
plain layers equal to the originals byte for byte, and must refuse a key that is not a
recipient. Runs skopeo; keys are made here with cryptography. Touches only temp dirs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .keyfiles import write_key_set

pytestmark = pytest.mark.integration

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Keys:
    dir: Path
    files: dict[str, Path]
    policy: Path


@dataclass(frozen=True)
class Image:
    manifest: dict[str, Any]
    blobs: list[bytes]  # layer blobs, in manifest order


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    d = tmp_path_factory.mktemp("encrypt-keys")
    files = write_key_set(d, "ocirt-encrypt-test")
    policy = d / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    return Keys(d, files, policy)


def _read(layout: Path, tag: str) -> Image:
    index = json.loads((layout / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) == tag]
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / entry["digest"].split(":", 1)[1]).read_bytes())
    layers = [(blobs / la["digest"].split(":", 1)[1]).read_bytes() for la in manifest["layers"]]
    return Image(manifest, layers)


def _ocirt_encrypt(src: str, dest: str, recipients: list[str], *extra: str) -> str:
    args = [a for r in recipients for a in ("--recipient", r)]
    result = subprocess.run(
        [sys.executable, "-m", "ocirt.cli.main", "image", "encrypt", *args, *extra, src, dest],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _skopeo_decrypt(
    keys: Keys, src: str, dest: str, decryption_keys: list[str]
) -> subprocess.CompletedProcess[str]:
    args = [a for k in decryption_keys for a in ("--decryption-key", k)]
    return subprocess.run(
        ["skopeo", "--policy", str(keys.policy), "copy", *args, f"oci:{src}", f"oci:{dest}"],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("recipients", "decryption_keys", "extra"),
    [
        (["jwe:{rsa_pub}"], ["{rsa}"], []),
        (["jwe:{ec_pub}"], ["{ec}"], []),
        (["pkcs7:{p7_cert}"], ["{p7}", "{p7_cert}"], []),
        (["jwe:{rsa_pub}", "jwe:{ec_pub}", "pkcs7:{p7_cert}"], ["{ec}"], []),
        (["jwe:{rsa_pub}", "jwe:{ec_pub}", "pkcs7:{p7_cert}"], ["{p7}", "{p7_cert}"], []),
        (["jwe:{rsa_pub}"], ["{rsa}"], ["--encrypt-layer", "0", "--encrypt-layer", "-1"]),
    ],
    ids=["jwe-rsa", "jwe-ec", "pkcs7", "multi-ec", "multi-pkcs7", "some-layers"],
)
def test_skopeo_decrypts_ocirt_encrypted_layout(
    busybox_image: Any,
    keys: Keys,
    tmp_path: Path,
    recipients: list[str],
    decryption_keys: list[str],
    extra: list[str],
) -> None:
    paths = {name: str(path) for name, path in keys.files.items()}
    original = _read(busybox_image.layout, busybox_image.tag)
    encrypted_dir = tmp_path / "enc"
    out = _ocirt_encrypt(
        f"{busybox_image.layout}:{busybox_image.tag}",
        f"{encrypted_dir}:secret",
        [r.format(**paths) for r in recipients],
        *extra,
    )
    assert out.startswith(f"{encrypted_dir}:secret sha256:")

    encrypted = _read(encrypted_dir, "secret")
    chosen = {0, 3} if extra else {0, 1, 2, 3}
    assert len(encrypted.blobs) == len(original.blobs) == 4
    for i, (before, after) in enumerate(
        zip(original.manifest["layers"], encrypted.manifest["layers"], strict=True)
    ):
        if i in chosen:
            assert after["mediaType"] == before["mediaType"] + "+encrypted"
            assert encrypted.blobs[i] != original.blobs[i]
        else:
            assert after == before

    result = _skopeo_decrypt(
        keys,
        f"{encrypted_dir}:secret",
        f"{tmp_path / 'plain'}:plain",
        [k.format(**paths) for k in decryption_keys],
    )
    assert result.returncode == 0, result.stderr
    plain = _read(tmp_path / "plain", "plain")
    assert plain.blobs == original.blobs
    assert [la["mediaType"] for la in plain.manifest["layers"]] == [
        la["mediaType"] for la in original.manifest["layers"]
    ]
    assert plain.manifest["config"]["digest"] == original.manifest["config"]["digest"]


@pytest.mark.parametrize("recipient", ["jwe:{rsa_pub}", "pkcs7:{p7_cert}"])
def test_skopeo_refuses_a_key_that_is_not_a_recipient(
    busybox_image: Any, keys: Keys, tmp_path: Path, recipient: str
) -> None:
    paths = {name: str(path) for name, path in keys.files.items()}
    _ocirt_encrypt(
        f"{busybox_image.layout}:{busybox_image.tag}",
        f"{tmp_path / 'enc'}:secret",
        [recipient.format(**paths)],
    )
    result = _skopeo_decrypt(
        keys, f"{tmp_path / 'enc'}:secret", f"{tmp_path / 'plain'}:plain", [paths["other"]]
    )
    assert result.returncode != 0
    assert "decrypt" in result.stderr.lower()
    assert not (tmp_path / "plain" / "index.json").exists()
