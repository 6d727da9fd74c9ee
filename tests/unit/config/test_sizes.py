"""Size texts: Kanto's rules widened by docs/kanto-compatibility.md decision 5."""

from __future__ import annotations

import pytest

from ocirt.config.sizes import MAX_BYTES, parse_size, scale_size
from ocirt.errors import ValidationError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100M", 100 * MIB),
        ("100m", 100 * MIB),
        ("3M", 3 * MIB),
        ("1k", KIB),
        ("1K", KIB),
        ("2g", 2 * GIB),
        ("2G", 2 * GIB),
        ("1.5G", GIB + GIB // 2),
        ("0.5k", 512),
        ("100 M", 100 * MIB),  # Kanto's pattern allows one space before the unit
        ("100B", 100),  # docs/kanto-compatibility.md decision 5: Kanto rejects B
        ("100b", 100),
        ("1.9B", 1),  # truncated, as Kanto's int64 conversion truncates
        ("0M", 0),
    ],
)
def test_parse_size_accepts(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1024",  # the unit is mandatory
        "M",
        "-1M",
        "+1M",
        "1.2.3M",
        "1.M",
        ".5M",
        "1e3M",
        "1T",
        "1MB",
        "1KiB",
        " 1M",
        "1M ",
        "1  M",
        "1\nM",
        "100M\n",
        "\u0661\u0660M",  # Arabic-Indic digits are digits to Python's \d, not to Kanto
        "9" * 30 + "G",  # beyond int64
        "x" * 10_000,
    ],
)
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValidationError, match="invalid size provided"):
        parse_size(text)


def test_parse_size_limit_is_int64() -> None:
    assert parse_size("8589934591G") == 8589934591 * GIB <= MAX_BYTES
    with pytest.raises(ValidationError):
        parse_size("8589934592G")


@pytest.mark.parametrize(
    "value",
    [None, 100, 1.5, b"100M", ["100M"]],
)
def test_parse_size_rejects_non_text(value: object) -> None:
    with pytest.raises(ValidationError):
        parse_size(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "factor", "expected"),
    [
        ("200M", 2, "400M"),
        ("1.5g", 2, "3g"),
        ("0.3k", 2, "0.6k"),
        ("100 M", 2, "200M"),
        ("7B", 3, "21B"),
    ],
)
def test_scale_size_keeps_the_unit(text: str, factor: int, expected: str) -> None:
    assert scale_size(text, factor) == expected


def test_scaled_size_is_the_multiple_in_bytes() -> None:
    assert parse_size(scale_size("200M", 2)) == 2 * parse_size("200M")
    assert parse_size(scale_size("1.25G", 2)) == 2 * parse_size("1.25G")


@pytest.mark.parametrize("text", ["", "abc", "5000000000G", "9" * 37 + "G"])
def test_scale_size_rejects(text: str) -> None:
    with pytest.raises(ValidationError):
        scale_size(text, 2)
