"""ocirt.hashing: the built-in SHA-256 must give hashlib's digests."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from ocirt.hashing import sha256_hex, small_digest_hex


@pytest.mark.parametrize(
    "text", ["", "kanto-cm0", "docker.io/library/busybox:latest", "ä€😀", "x" * 10_000]
)
def test_matches_hashlib(text: str) -> None:
    assert sha256_hex(text) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
@pytest.mark.parametrize("data", [b"", b'{"architecture":"amd64"}', bytes(range(256)) * 40])
def test_small_digests_match_hashlib(algorithm: str, data: bytes) -> None:
    assert small_digest_hex(algorithm, data) == hashlib.new(algorithm, data).hexdigest()


def test_small_digest_refuses_other_algorithms() -> None:
    with pytest.raises(ValueError):
        small_digest_hex("md5", b"")


def test_small_digests_do_not_load_openssl() -> None:
    code = (
        "import sys; from ocirt.hashing import small_digest_hex; "
        "small_digest_hex('sha256', b'x'); small_digest_hex('sha512', b'x'); "
        "print('_hashlib' in sys.modules, 'hashlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
