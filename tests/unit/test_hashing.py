"""ocirt.hashing: the built-in SHA-256 must give hashlib's digests."""

from __future__ import annotations

import hashlib

import pytest

from ocirt.hashing import sha256_hex


@pytest.mark.parametrize(
    "text", ["", "kanto-cm0", "docker.io/library/busybox:latest", "ä€😀", "x" * 10_000]
)
def test_matches_hashlib(text: str) -> None:
    assert sha256_hex(text) == hashlib.sha256(text.encode()).hexdigest()
