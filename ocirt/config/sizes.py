"""Size texts such as "100M" or "1.5g": parse them to bytes and rescale them. Pure: no I/O.

Kanto accepts `^(\\d+(\\.\\d+)*) ?([kKmMgG])$`, 1024-based, with a mandatory unit
(kanto-reference §3). ocirt also takes the unit B and a single optional decimal part, as
the user documents promise (decision 5). A bare number stays invalid: the unit is what
tells a reader whether "1024" meant bytes or kilobytes.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ocirt.errors import ValidationError

_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([bBkKmMgG])", re.ASCII)
_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Go keeps sizes in int64; anything larger cannot be a real limit and would overflow there.
MAX_BYTES = 2**63 - 1
# Long enough for any int64 in bytes with a decimal part; longer texts are garbage.
_MAX_TEXT = 40


def _split(text: str) -> tuple[Decimal, str]:
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise ValidationError(f"invalid size provided {str(text)[:_MAX_TEXT]}")
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValidationError(f"invalid size provided {text}")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:  # the pattern only lets digits through; kept for safety
        raise ValidationError(f"invalid size provided {text}") from exc
    return number, match.group(2)


def parse_size(text: str) -> int:
    """Bytes of a size text ("100M" -> 104857600), truncated like Kanto's int64 conversion.

    Raises ValidationError for anything else, including "" (callers that treat an empty
    size as "unset" check for it first) and sizes that do not fit in int64.
    """
    number, unit = _split(text)
    size = int(number * _UNITS[unit.lower()])
    if size > MAX_BYTES:
        raise ValidationError(f"invalid size provided {text}")
    return size


def scale_size(text: str, factor: int) -> str:
    """The size text multiplied by `factor`, in the same unit ("200M", 2 -> "400M").

    Kanto derives the default swap as 2 x memory this way (FillMemorySwap); keeping the
    unit keeps the published value readable.
    """
    number, unit = _split(text)
    try:
        scaled = (number * factor).quantize(Decimal("0.0001")).normalize()
    except InvalidOperation as exc:  # beyond Decimal's precision: far beyond int64 anyway
        raise ValidationError(f"invalid size provided {text}") from exc
    result = f"{format(scaled, 'f')}{unit}"
    parse_size(result)
    return result
