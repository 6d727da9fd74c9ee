"""The blocking-mode disk spool (native/monitor/spool.h) with real runc containers: the
log is the same as the direct path's, byte for byte, also when the spool fails midway;
a full spool holds the container back and loses nothing; rotation is unchanged; nothing
of the spool is left on disk.

Test hooks (environment, inherited by the monitor): OCIRT_MONITOR_TEST_SPOOL_CAP sets the
backlog cap in bytes, OCIRT_MONITOR_TEST_SPOOL_FAIL_AFTER makes every splice fail with
EIO once that many bytes were spooled (0: the direct path from the first byte)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ocirt.logs.jsonline import LogStream, encode_line
from ocirt.logs.reader import read_logs
from ocirt.runtime.monitor import MONITOR_LOG, LogOptions
from tests.support.waiting import LONG_WAIT, wait_for

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

MAX_MSG = 16384
WAIT_FOR_GO = "while [ ! -e /go ]; do sleep 0.02; done; "


def utf8_cut(chunk: bytes) -> int:
    """Where the monitor cuts a full chunk: before an incomplete UTF-8 sequence at its end."""
    n = len(chunk)
    for back in range(1, 4):
        if back >= n:
            break
        c = chunk[n - back]
        if c & 0xC0 == 0x80:
            continue
        need = 4 if c >= 0xF0 else 3 if c >= 0xE0 else 2 if c >= 0xC0 else 1
        return n - back if need > back else n
    return n


def messages(data: bytes) -> list[bytes]:
    """Docker's copier as the monitor runs it: a message ends at '\\n' (kept) within
    16 KiB of its start, else is the first 16 KiB cut back to a character boundary; what
    is left at EOF is the last message."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        nl = data.find(b"\n", i, i + MAX_MSG)
        if nl >= 0:
            out.append(data[i : nl + 1])
            i = nl + 1
        elif len(data) - i >= MAX_MSG:
            cut = utf8_cut(data[i : i + MAX_MSG])
            out.append(data[i : i + cut])
            i += cut
        else:
            out.append(data[i:])
            break
    return out


def stream_text(rng: random.Random, size: int, tail: bytes) -> bytes:
    """size-ish bytes of short, multi-byte, escaped and > 16 KiB lines, then tail."""
    pieces: list[bytes] = []
    total = 0
    while total < size:
        kind = rng.randrange(10)
        if kind == 0:
            # Long: 3-byte characters after an odd prefix, so 16 KiB cuts land inside.
            line = b"L" * rng.randrange(1, 5) + "€".encode() * rng.randrange(6000, 24000)
            line += "🐳".encode() * rng.randrange(0, 3000) + b"\n"
        elif kind == 1:
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) + b"\n"
        elif kind == 2:
            line = ("é€🐳\u2028" * rng.randrange(1, 50)).encode() + b'"<&>\\\t\r\x01\n'
        else:
            line = f"line {total} {'x' * rng.randrange(0, 120)}\n".encode()
        pieces.append(line)
        total += len(line)
    return b"".join(pieces) + tail


def cut_into(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    """data in count pieces cut at arbitrary bytes (mid-line, mid-character)."""
    cuts = sorted(rng.sample(range(1, len(data)), count - 1))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def spool_fd_targets(monitor_pid: int, directory: Path) -> list[str]:
    """The monitor's open files in directory that have no name (O_TMPFILE or unlinked)."""
    found = []
    for fd in Path(f"/proc/{monitor_pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(f"{directory}/") and target.endswith(" (deleted)"):
            found.append(target)
    return found


def names_left(env: Env) -> set[str]:
    return {p.name for p in env.state_dir.iterdir()}


EXPECTED_NAMES = {"json.log", MONITOR_LOG, "exit.json", "container.pid", "runtime.log"}


@pytest.mark.parametrize(
    "fail_after",
    [None, 0, 1_000_003],
    ids=["spool", "direct", "spool-fails-midway"],
)
def test_log_is_the_direct_paths_byte_for_byte(
    env: Env, monkeypatch: pytest.MonkeyPatch, fail_after: int | None
) -> None:
    if fail_after is not None:
        monkeypatch.setenv("OCIRT_MONITOR_TEST_SPOOL_FAIL_AFTER", str(fail_after))
    rng = random.Random(4242)
    # Both end without a newline; stderr's tail is itself longer than one chunk.
    out = stream_text(rng, 3_000_000, b"partial last line \xe2\x82")
    err = stream_text(rng, 1_000_000, "é".encode() * 12000)
    script = WAIT_FOR_GO
    for i, (o, e) in enumerate(zip(cut_into(out, rng, 24), cut_into(err, rng, 24), strict=True)):
        (env.rootfs / f"o{i}").write_bytes(o)
        (env.rootfs / f"e{i}").write_bytes(e)
        script += f"cat /o{i}; cat /e{i} >&2; "
    handle = env.launch(env.options(env.bundle(["/bin/sh", "-c", script])))
    # The container waits for /go, so the monitor is certainly still there.
    spool_files = spool_fd_targets(handle.monitor_pid, env.state_dir)
    assert len(spool_files) == 1
    (env.rootfs / "go").touch()
    env.start()
    record = env.exit_record()
    assert record.exit_code == 0 and record.dropped_log_lines == 0

    lines = env.log_lines()
    for stream, data in ((LogStream.STDOUT, out), (LogStream.STDERR, err)):
        name = stream.value
        mine = [line for line in lines if line.startswith(b'{"stream":"%s"' % name.encode())]
        expected = messages(data)
        assert len(mine) == len(expected), name
        for got, msg in zip(mine, expected, strict=True):
            want = encode_line(stream, msg, 0)
            assert got.split(b',"time":')[0] == want.split(b',"time":')[0]
        # Every chunk of a line that was split carries its first chunk's time.
        times = [json.loads(line)["time"] for line in mine]
        for i, msg in enumerate(expected[:-1]):
            if not msg.endswith(b"\n"):
                assert times[i + 1] == times[i], (name, i)

    warnings = (env.state_dir / MONITOR_LOG).read_text()
    assert ("log spool failed" in warnings) == (fail_after is not None)
    # Nothing of the spool is left beside the log.
    assert names_left(env) <= EXPECTED_NAMES


def test_a_full_spool_holds_the_container_and_loses_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 64 * 1024
    monkeypatch.setenv("OCIRT_MONITOR_TEST_SPOOL_CAP", str(cap))
    count, width = 2000, 1000
    text = b"".join(b"%06d %s\n" % (i, b"x" * (width - 8)) for i in range(count))
    (env.rootfs / "big").write_bytes(text)
    bundle = env.bundle(["/bin/sh", "-c", WAIT_FOR_GO + "cat /big; touch /done"])
    # The converter sleeps 20 ms before each 32 KiB write (test-only option), so the
    # container's 2 MB take it at least a second; without a cap, the container would
    # be done long before that.
    handle = env.launch(env.options(bundle, test_write_delay_ms=20))
    assert len(spool_fd_targets(handle.monitor_pid, env.state_dir)) == 1
    (env.rootfs / "go").touch()
    env.start()
    wait_for("the container's last write", lambda: (env.rootfs / "done").exists(), LONG_WAIT)
    # When the container wrote its last byte, at most the pipe (64 KiB), the backlog
    # (the cap plus one splice) and the log's write buffer were not in the log yet:
    # about 250 lines. The margin is generous; an unbounded spool would leave ~2000.
    logged = (env.state_dir / "json.log").read_bytes().count(b"\n")
    assert logged >= count - 500
    record = env.exit_record()
    assert record.exit_code == 0 and record.dropped_log_lines == 0
    got = [e.text for e in read_logs(env.state_dir / "json.log")]
    assert got == [line.decode() + "\n" for line in text.splitlines()]
    assert names_left(env) <= EXPECTED_NAMES


def test_rotation_through_a_full_spool_keeps_every_line(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIRT_MONITOR_TEST_SPOOL_CAP", str(16 * 1024))
    log = LogOptions(path=env.state_dir / "json.log", max_size=32 * 1024, max_files=100)
    env.launch(env.options(env.bundle(["seq", "1", "30000"]), log=log))
    env.start()
    record = env.exit_record()
    assert record.exit_code == 0 and record.dropped_log_lines == 0
    files = list(env.state_dir.glob("json.log*"))
    assert 40 <= len(files) < 100
    assert [int(e.text) for e in read_logs(env.state_dir / "json.log")] == list(range(1, 30001))
    assert names_left(env) - {p.name for p in files} <= EXPECTED_NAMES
