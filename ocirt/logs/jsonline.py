"""The Docker json-file line format, as ocirt's monitor writes it. Pure: no I/O.

One object per line, in Kanto's field order (docs/kanto-compatibility.md §5)::

    {"stream":"stdout","log":"hello\\n","time":"2024-01-02T03:04:05.123456789Z"}

The C monitor (native/monitor/jsonlog.c) is the writer; `encode_line` here is the same
encoding in Python, for tests and for any Python-side writer. Lines over 16 KiB are
stored as chunks whose `log` lacks the trailing newline; `EntryAssembler` joins them
again (docs/runtime-notes.md §3.2).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum


class LogStream(Enum):
    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of container output (chunks already joined)."""

    stream: LogStream
    text: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Chunk:
    """One json-file line; `complete` is False for a chunk of a longer line."""

    stream: LogStream
    text: str
    time: datetime

    @property
    def complete(self) -> bool:
        return self.text.endswith("\n")


# Docker's jsonlogbytes.go escapes, beyond what JSON requires, < > & and U+2028/9.
_ESCAPES: dict[int, str] = {c: f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update(
    {
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
        ord("<"): "\\u003c",
        ord(">"): "\\u003e",
        ord("&"): "\\u0026",
        0x2028: "\\u2028",
        0x2029: "\\u2029",
    }
)
# surrogateescape maps each undecodable byte to one lone surrogate; each becomes
# \ufffd, which is Go's rule too (one replacement per invalid byte).
_ESCAPES.update({c: "\\ufffd" for c in range(0xDC80, 0xDD00)})

_TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def format_time(time_ns: int) -> str:
    """RFC3339Nano in UTC with the fraction's trailing zeros trimmed (Go's format)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def parse_time(text: str) -> datetime:
    """Parse a json-file timestamp (microsecond precision is kept). ValueError if bad."""
    if not _TIME_RE.match(text):
        raise ValueError(f"not an RFC3339Nano UTC time: {text!r}")
    return datetime.fromisoformat(text)


def escape(data: bytes) -> str:
    """Docker's escaping of a log message, as the text between the quotes."""
    return data.decode("utf-8", "surrogateescape").translate(_ESCAPES)


def encode_line(stream: LogStream, data: bytes, time_ns: int) -> bytes:
    """One json-file line including its newline."""
    return (
        f'{{"stream":"{stream.value}","log":"{escape(data)}","time":"{format_time(time_ns)}"}}\n'
    ).encode()


def decode_line(line: bytes) -> Chunk | None:
    """Parse one stored line; None for anything that is not a well-formed entry."""
    try:
        raw = json.loads(line)
        if not isinstance(raw, dict):
            return None
        stream = LogStream(raw.get("stream"))
        text = raw.get("log", "")
        when = raw.get("time")
        if not isinstance(text, str) or not isinstance(when, str):
            return None
        return Chunk(stream, text, parse_time(when))
    except ValueError:
        return None


class EntryAssembler:
    """Joins chunks into entries, per stream (stdout and stderr chunks may interleave).

    An entry takes the time of its first chunk, which the writer also gives every later
    chunk of the same line.
    """

    def __init__(self) -> None:
        self._pending: dict[LogStream, list[Chunk]] = {}

    def feed(self, chunk: Chunk) -> LogEntry | None:
        parts = self._pending.setdefault(chunk.stream, [])
        parts.append(chunk)
        if not chunk.complete:
            return None
        del self._pending[chunk.stream]
        return LogEntry(chunk.stream, "".join(p.text for p in parts), parts[0].time)

    def flush(self) -> list[LogEntry]:
        """Entries for lines that never got their newline (output cut at EOF)."""
        out = [
            LogEntry(stream, "".join(p.text for p in parts), parts[0].time)
            for stream, parts in self._pending.items()
        ]
        self._pending.clear()
        return sorted(out, key=lambda e: e.time)
