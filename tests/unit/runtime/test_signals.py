"""The one signal parser: Kanto's accepted forms, range and messages."""

from __future__ import annotations

import pytest

from ocirt.errors import InvalidArgument
from ocirt.runtime.signals import parse_signal


@pytest.mark.parametrize(
    ("text", "expected"),
    [("SIGTERM", "SIGTERM"), ("sigint", "SIGINT"), ("KILL", "SIGKILL"), ("2", "2"), ("255", "255")],
)
def test_signals_kanto_accepts(text: str, expected: str) -> None:
    assert parse_signal(text) == expected


@pytest.mark.parametrize("text", ["0", "256", "-1", "SIGNOPE", "", "SIG_IGN", "1.5", "TERM " * 3])
def test_invalid_signals(text: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_signal(text)
    assert info.value.message == f"invalid signal = {text}"
    assert info.value.status == 400


def test_numbers_as_ints() -> None:
    assert parse_signal(9) == "9"
