"""Go duration texts (`20s`, `250ms`, `1h2m3s`) in seconds. Pure: no I/O.

Kanto's config file and `docker logs --since` both speak Go's time.ParseDuration, so the
daemon's config reader and the CLI share this one parser.
"""

from __future__ import annotations

import re

from ocirt.errors import InvalidArgument

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds. Raises InvalidArgument."""
    original = text
    sign = 1.0
    if text[:1] in "+-" and text:
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise InvalidArgument(f"invalid duration {original!r}")
    total = 0.0
    pos = 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise InvalidArgument(f"invalid duration {original!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total
