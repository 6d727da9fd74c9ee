"""The monitor's escaping, byte for byte, for every byte value at every position of its
16-byte scanning blocks, against encode_line (the Python mirror of Docker's encoder)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from ocirt.logs.jsonline import LogStream, encode_line, parse_time
from ocirt.logs.reader import read_logs

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

# Multi-byte pieces whose handling depends on what follows them: valid sequences of
# each length, U+2028/9, truncated and overlong sequences, surrogates, lone bytes.
SEQUENCES = [
    "é".encode(),
    "€".encode(),
    "🐳".encode(),
    "\u2028".encode(),
    "\u2029".encode(),
    b"\xe2\x82",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xff",
]


def corpus_lines() -> list[bytes]:
    lines = []
    # 33 offsets cover every position in, and across, two 16-byte blocks.
    for offset in range(33):
        for value in range(256):
            if value != ord("\n"):
                lines.append(b"a" * offset + bytes([value]) + b"z" * 20 + b"\n")
        for seq in SEQUENCES:
            lines.append(b"b" * offset + seq + b"y" * 17 + b"\n")
            lines.append(b"c" * offset + seq + b"\n")
    return lines


def test_every_byte_at_every_offset_is_escaped_as_docker_does(env: Env) -> None:
    lines = corpus_lines()
    (env.rootfs / "corpus").write_bytes(b"".join(lines))
    env.launch(env.options(env.bundle(["cat", "/corpus"])))
    env.start()
    assert env.exit_record().exit_code == 0
    written = env.log_lines()
    assert len(written) == len(lines)
    for got, data in zip(written, lines, strict=True):
        expected = encode_line(LogStream.STDOUT, data, 0)
        assert got.split(b',"time":')[0] == expected.split(b',"time":')[0], data
        parse_time(json.loads(got)["time"])


def test_chunks_of_a_long_line_are_not_cut_inside_a_character(env: Env) -> None:
    # The 16 KiB cut would fall inside the euro sign: it moves whole to the next chunk.
    line = b"x" * 16383 + "€".encode() + b"!\n"
    (env.rootfs / "long").write_bytes(line)
    env.launch(env.options(env.bundle(["cat", "/long"])))
    env.start()
    assert env.exit_record().exit_code == 0
    chunks = [json.loads(raw) for raw in env.log_lines()]
    assert [c["log"] for c in chunks] == ["x" * 16383, "€!\n"]
    assert chunks[0]["time"] == chunks[1]["time"]
    (entry,) = read_logs(env.state_dir / "json.log")
    assert entry.text == line.decode()
