"""Typed reading of decoded JSON (Ditto values, Kanto files). Pure: no I/O.

Every wrong type becomes a ValidationError that names the path of the offending member,
so untrusted input can never surface as a KeyError or TypeError. JSON `null` counts as
absent, as it does for Go's encoding/json, which Kanto's clients are written against.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import Enum
from typing import TypeVar

from ocirt.errors import ValidationError

E = TypeVar("E", bound=Enum)

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
_SHOWN = 40


def _show(value: object) -> str:
    # str() of an int with thousands of digits is slow and may raise; never print those.
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a huge integer"
    text = json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _kind(value: object) -> str:
    match value:
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case _:
            return type(value).__name__


def _wrong(path: str, expected: str, value: object) -> ValidationError:
    return ValidationError(f"invalid value at {path}: expected {expected}, got {_kind(value)}")


def parse_enum(enum: type[E], raw: str) -> E | None:
    """The member whose value matches `raw` in either case and with - or _
    (docs/kanto-compatibility.md decision 4)."""
    key = raw.lower().replace("_", "-")
    for member in enum:
        if member.value == key:
            return member
    return None


def load_json(text: str | bytes) -> object:
    """Decode JSON text; malformed, non-finite or absurdly nested input is a ValidationError."""

    def reject_constant(name: str) -> object:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=reject_constant)
    except (ValueError, RecursionError, TypeError) as exc:
        raise ValidationError(f"invalid JSON: {exc}") from exc


class Fields:
    """One JSON object being read; `path` ("config.log") prefixes every error message."""

    __slots__ = ("_data", "path")

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise _wrong(path, "an object", data)
        self._data: dict[str, object] = data
        self.path = path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def items(self) -> Iterator[tuple[str, object]]:
        return iter(self._data.items())

    def string(self, key: str) -> str:
        value = self._data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _wrong(self._at(key), "a string", value)
        return value

    def boolean(self, key: str) -> bool:
        value = self._data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise _wrong(self._at(key), "a boolean", value)
        return value

    def integer(self, key: str, *, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
        value = self._data.get(key)
        if value is None:
            return 0
        # bool is an int in Python but never a number in JSON; 2.0 is no integer for Go.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(self._at(key), "an integer", value)
        if not low <= value <= high:
            raise ValidationError(
                f"invalid value at {self._at(key)}: {_show(value)} is outside {low}..{high}"
            )
        return value

    def number(self, key: str, *, low: float, high: float) -> float:
        value = self._data.get(key)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong(self._at(key), "a number", value)
        # Compared before any float conversion: a JSON integer may have thousands of digits.
        # NaN fails every comparison and infinities are out of range, so both end here too.
        if not low <= value <= high:
            raise ValidationError(
                f"invalid value at {self._at(key)}: {_show(value)} is outside {low}..{high}"
            )
        return float(value)

    def strings(self, key: str) -> tuple[str, ...] | None:
        """The array of strings, or None when absent (Go's nil slice)."""
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise _wrong(self._at(key), "an array of strings", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise _wrong(f"{self._at(key)}[{index}]", "a string", item)
        return tuple(value)

    def objects(self, key: str) -> list[Fields] | None:
        """The array of objects, or None when absent (Go's nil slice)."""
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise _wrong(self._at(key), "an array of objects", value)
        return [Fields(item, f"{self._at(key)}[{index}]") for index, item in enumerate(value)]

    def object(self, key: str) -> Fields | None:
        value = self._data.get(key)
        if value is None:
            return None
        return Fields(value, self._at(key))
