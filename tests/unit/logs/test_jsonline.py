"""The json-file line format: Docker's escaping, Go's time format, chunk joining."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ocirt.logs.jsonline import (
    Chunk,
    EntryAssembler,
    LogStream,
    decode_line,
    encode_line,
    escape,
    format_time,
    parse_time,
)

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (b"plain text", "plain text"),
        (b'"q" \\', '\\"q\\" \\\\'),
        (b"\n\r\t", "\\n\\r\\t"),
        (b"\x00\x01\x1f\x7f", "\\u0000\\u0001\\u001f\x7f"),
        (b"<a>&", "\\u003ca\\u003e\\u0026"),
        (b"\xe2\x80\xa8\xe2\x80\xa9", "\\u2028\\u2029"),
        (b"\xc3\xa9\xf0\x9f\x90\xb3", "é🐳"),
        # Go's rule: one U+FFFD per byte that does not start a valid sequence.
        (b"\xff", "\\ufffd"),
        (b"a\xe2\x82b", "a\\ufffd\\ufffdb"),
        (b"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"),  # an encoded surrogate
        (b"\xc0\xaf", "\\ufffd\\ufffd"),  # an overlong '/'
    ],
)
def test_escape_follows_docker(raw: bytes, escaped: str) -> None:
    assert escape(raw) == escaped


def test_encoded_line_has_kantos_field_order_and_decodes_back() -> None:
    data = b'say "hi" <b>\t\xff\n'
    line = encode_line(LogStream.STDERR, data, T0 + 120_000_000)
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert list(json.loads(line)) == ["stream", "log", "time"]
    chunk = decode_line(line)
    assert chunk == Chunk(
        LogStream.STDERR,
        'say "hi" <b>\t\ufffd\n',
        datetime(2023, 11, 14, 22, 13, 20, 120000, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (T0, "2023-11-14T22:13:20Z"),
        (T0 + 100_000_000, "2023-11-14T22:13:20.1Z"),
        (T0 + 123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (T0 + 1_000, "2023-11-14T22:13:20.000001Z"),
    ],
)
def test_time_is_rfc3339nano_with_trailing_zeros_trimmed(ns: int, text: str) -> None:
    assert format_time(ns) == text
    assert parse_time(text) == datetime.fromtimestamp(ns // 1000 / 1e6, UTC).replace(
        microsecond=(ns // 1000) % 1_000_000
    )


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"not json\n",
        b"[1,2]\n",
        b'{"stream":"stdin","log":"x","time":"2023-11-14T22:13:20Z"}\n',
        b'{"stream":"stdout","log":3,"time":"2023-11-14T22:13:20Z"}\n',
        b'{"stream":"stdout","log":"x","time":"yesterday"}\n',
        b'{"stream":"stdout","log":"x","time":"2023-11-14T22:13:20+01:00"}\n',
        b'{"stream":"stdout","log":"x"',
    ],
)
def test_malformed_lines_are_rejected_not_raised(line: bytes) -> None:
    assert decode_line(line) is None


def test_assembler_joins_chunks_per_stream_with_the_first_time() -> None:
    t1, t2 = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    asm = EntryAssembler()
    assert asm.feed(Chunk(LogStream.STDOUT, "aa", t1)) is None
    err = asm.feed(Chunk(LogStream.STDERR, "boom\n", t2))
    assert err is not None and (err.stream, err.text, err.time) == (LogStream.STDERR, "boom\n", t2)
    assert asm.feed(Chunk(LogStream.STDOUT, "bb", t1)) is None
    out = asm.feed(Chunk(LogStream.STDOUT, "cc\n", t1))
    assert out is not None and (out.text, out.time) == ("aabbcc\n", t1)
    assert asm.flush() == []
    asm.feed(Chunk(LogStream.STDOUT, "cut at eof", t2))
    assert [e.text for e in asm.flush()] == ["cut at eof"]
