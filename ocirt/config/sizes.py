"""Size texts such as "100M" or "1.5g": parse them to bytes and rescale them. Pure: no I/O.

Kanto accepts `^(\\d+(\\.\\d+)*) ?([kKmMgG])$`, 1024-based, with a mandatory unit
(docs/kanto-compatibility.md §3). ocirt also takes the unit B and a single optional decimal part, as
the user documents promise (docs/kanto-compatibility.md decision 5). A bare number stays invalid:
the unit is what tells a reader whether "1024" meant bytes or kilobytes.
"""

from __future__ import annotations

import re

from ocirt.errors import ValidationError

_SIZE = re.compile(r"(\d+)(?:\.(\d+))? ?([bBkKmMgG])", re.ASCII)
_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Go keeps sizes in int64; anything larger cannot be a real limit and would overflow there.
MAX_BYTES = 2**63 - 1
# Long enough for any int64 in bytes with a decimal part; longer texts are garbage.
_MAX_TEXT = 40
# scale_size keeps this many decimal places.
_PLACES = 4


def _split(text: str) -> tuple[int, int, str]:
    """(digits, decimal places, unit): "1.25M" -> (125, 2, "M"). Exact integers, so no
    float rounding, and no `decimal` module in a small daemon's memory."""
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ValidationError(f"invalid size provided {str(text)[:_MAX_TEXT]}")
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValidationError(f"invalid size provided {text}")
    whole, fraction, unit = match.group(1), match.group(2) or "", match.group(3)
    return int(whole + fraction), len(fraction), unit


def parse_size(text: str) -> int:
    """Bytes of a size text ("100M" -> 104857600), truncated like Kanto's int64 conversion.

    Raises ValidationError for anything else, including "" (callers that treat an empty
    size as "unset" check for it first) and sizes that do not fit in int64.
    """
    digits, places, unit = _split(text)
    divisor: int = 10**places
    size = digits * _UNITS[unit.lower()] // divisor
    if size > MAX_BYTES:
        raise ValidationError(f"invalid size provided {text}")
    return size


def scale_size(text: str, factor: int) -> str:
    """The size text multiplied by `factor`, in the same unit ("200M", 2 -> "400M").

    Kanto derives the default swap as 2 x memory this way (FillMemorySwap); keeping the
    unit keeps the published value readable. Rounded half to even at four places.
    """
    digits, places, unit = _split(text)
    divisor: int = 10**places
    scaled, rest = divmod(digits * factor * 10**_PLACES, divisor)
    if 2 * rest > divisor or (2 * rest == divisor and scaled % 2 == 1):
        scaled += 1
    whole, fraction = divmod(scaled, 10**_PLACES)
    decimals = f"{fraction:0{_PLACES}d}".rstrip("0")
    result = f"{whole}.{decimals}{unit}" if decimals else f"{whole}{unit}"
    parse_size(result)
    return result
