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


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:" + HEX.upper(),  # upper-case hex
        "sha256:" + HEX[:-1] + "A",
        "sha256:" + HEX[:-1],  # too short
        "sha256:" + HEX + "a",  # too long
        "sha512:" + HEX,  # sha256 length for sha512
        "sha256:" + HEX[:-1] + "\n",  # a line end where `$` would still match
        "sha256:" + HEX[:-1] + " ",
        "sha256:" + "\u0663" * 64,  # ARABIC-INDIC DIGIT THREE: str.isdigit() says yes
        "sha256:" + "\uff10" * 64,  # FULLWIDTH DIGIT ZERO
        "sha256:" + HEX[:-1] + "\u00e9",
        "SHA256:" + HEX,
        ":" + HEX,
    ],
)
def test_digest_rejections(bad: str) -> None:
    with pytest.raises(InvalidReference):
        parse_digest(bad)


def test_digest_accepts_exactly_the_lower_case_hex_characters() -> None:
    # Every character of the BMP in every position class (first, middle, last) against
    # the rule itself: lower-case ASCII hex, nothing else.
    accepted = set()
    for code in range(0x10000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue  # lone surrogates
        for position in (0, 31, 63):
            text = HEX[:position] + char + HEX[position + 1 :]
            try:
                parse_digest("sha256:" + text)
            except InvalidReference:
                continue
            accepted.add(char)
    assert accepted == set("0123456789abcdef")
    mixed = "0123456789abcdef" * 4
    assert parse_digest("sha256:" + mixed) == Digest("sha256", mixed)
