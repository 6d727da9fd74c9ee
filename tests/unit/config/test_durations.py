"""Go duration texts, as Kanto's config file and `ocirt logs --since` write them."""

from __future__ import annotations

import pytest

from ocirt.config.durations import parse_duration
from ocirt.errors import InvalidArgument


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20s", 20.0), ("250ms", 0.25), ("1h2m3s", 3723.0), ("0", 0.0), ("1.5h", 5400.0),
     ("300us", 0.0003), ("2µs", 2e-6), ("10ns", 1e-8), ("-1m", -60.0), (".5s", 0.5)],
)  # fmt: skip
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "s", "1x", "1h 2m", "--1s", "1.2.3s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_duration(text)
