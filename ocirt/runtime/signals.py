"""Signal names as the user gives them and as runc takes them: one parser. Pure.

Kanto accepts "SIGINT", "INT", "int" and numbers; the numbers are bounded by the width of
a wait status' signal byte (1..255), and Python's SIG_DFL/SIG_IGN handler constants, which
`signal.Signals` happens to list, are not signals.
"""

from __future__ import annotations

import signal as signals

from ocirt.errors import InvalidArgument

MAX_SIGNAL = 255


def parse_signal(text: str | int) -> str:
    """ "SIGINT", "INT", "int", "2" or 2 -> what runc kill accepts; else Kanto's error."""
    raw = str(text).strip()
    if raw.isdigit():
        if 1 <= int(raw) <= MAX_SIGNAL:
            return str(int(raw))
        raise InvalidArgument(f"invalid signal = {text}")
    name = raw.upper()
    if not name.startswith("SIG"):
        name = f"SIG{name}"
    if name not in signals.Signals.__members__ or name in ("SIG_DFL", "SIG_IGN"):
        raise InvalidArgument(f"invalid signal = {text}")
    return name
