from __future__ import annotations

import pytest

from ocirt.errors import InvalidReference
from ocirt.image.reference import Digest, parse_digest, parse_reference

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "expected", "host"),
    [
        ("busybox", "docker.io/library/busybox:latest", "registry-1.docker.io"),
        ("library/busybox:1.36", "docker.io/library/busybox:1.36", "registry-1.docker.io"),
        ("eclipse/kanto:x", "docker.io/eclipse/kanto:x", "registry-1.docker.io"),
        ("index.docker.io/eclipse/kanto", "docker.io/eclipse/kanto:latest", "registry-1.docker.io"),
        ("localhost/img", "localhost/img:latest", "localhost"),
        ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000"),
        ("127.0.0.1:5001/test/enc:multi", "127.0.0.1:5001/test/enc:multi", "127.0.0.1:5001"),
        ("ghcr.io/o/r@sha256:" + HEX, "ghcr.io/o/r@sha256:" + HEX, "ghcr.io"),
        ("ghcr.io/o/r:v1@sha256:" + HEX, "ghcr.io/o/r:v1@sha256:" + HEX, "ghcr.io"),
    ],
)
def test_normalisation(text: str, expected: str, host: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == expected
    assert ref.contact_host == host


def test_digest_wins_over_tag_for_the_manifest_request() -> None:
    ref = parse_reference("ghcr.io/o/r:v1@sha256:" + HEX)
    assert ref.object == "sha256:" + HEX
    assert parse_reference("ghcr.io/o/r").object == "latest"


@pytest.mark.parametrize(
    "text",
    [
        "",
        " busybox",
        "Busybox",
        "busybox:",
        "busybox:bad tag",
        "a/../b",
        "busybox@sha256:" + "A" * 64,
        "busybox@sha256:" + "a" * 63,
        "busybox@md5:" + "a" * 32,
        "busybox@sha256:../../etc/passwd",
        "host:99999999/x",
        "x/" + "a" * 300,
    ],
)
def test_invalid_references(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_reference(text)


def test_digest_validation_before_use_as_file_name() -> None:
    assert parse_digest("sha256:" + HEX) == Digest("sha256", HEX)
    assert parse_digest("sha512:" + "b" * 128).algorithm == "sha512"
    for bad in ("sha256:" + HEX + "/x", "sha256:", "sha256", "sha256:" + "g" * 64):
        with pytest.raises(InvalidReference):
            parse_digest(bad)
