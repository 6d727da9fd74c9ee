"""The monitor's json-file log from real runc containers: streams, escaping, splitting,
rotation, non-blocking drops, tty and stdin."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ocirt.config.model import LogDriver, LogMode
from ocirt.logs.jsonline import LogStream, encode_line
from ocirt.logs.reader import read_logs
from ocirt.runtime.monitor import ExitRecord, LogOptions
from tests.support.waiting import LONG_WAIT, wait_for

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration

# Quotes, backslash, tab, CR, a control byte, <>&, an invalid byte, a truncated
# sequence, a surrogate encoding, U+2028 and valid multi-byte text.
TRICKY = (
    b'q"b\\t\tcr\r c\x01 <a>&b \xff trunc\xe2\x82 sur\xed\xa0\x80'
    b" ls\xe2\x80\xa8 \xc3\xa9\xf0\x9f\x90\xb3\n"
)


def run_to_exit(env: Env, args: list[str], **kwargs: object) -> ExitRecord:
    env.launch(env.options(env.bundle(args), **kwargs))
    env.start()
    return env.exit_record()


def printf_arg(data: bytes) -> str:
    """data as octal escapes for busybox printf, so any byte survives the shell."""
    return "".join(f"\\{b:03o}" for b in data)


def test_streams_times_and_escaping_match_docker(env: Env) -> None:
    script = f"echo out1; echo err1 >&2; printf '{printf_arg(TRICKY)}'; echo out2; exit 3"
    record = run_to_exit(env, ["/bin/sh", "-c", script])
    assert record.exit_code == 3 and record.signal is None
    lines = env.log_lines()
    decoded = [json.loads(line) for line in lines]
    assert [list(d) for d in decoded] == [["stream", "log", "time"]] * 4
    plain = [(d["stream"], d["log"]) for d in decoded if "trunc" not in d["log"]]
    assert sorted(plain) == [("stderr", "err1\n"), ("stdout", "out1\n"), ("stdout", "out2\n")]
    tricky = next(line for line in lines if b"trunc" in line)
    # Byte-for-byte what Docker's encoder (mirrored by encode_line) would write.
    expected = encode_line(LogStream.STDOUT, TRICKY, 0)
    assert tricky.split(b',"time":')[0] == expected.split(b',"time":')[0]
    entries = list(read_logs(env.state_dir / "json.log"))
    assert [(e.stream, e.text) for e in entries if e.stream is LogStream.STDERR] == [
        (LogStream.STDERR, "err1\n")
    ]
    stdout = [e.text for e in entries if e.stream is LogStream.STDOUT]
    assert stdout[0] == "out1\n" and stdout[-1] == "out2\n"
    times = [e.time for e in entries]
    assert all(t.tzinfo is not None for t in times)
    assert min(times) <= record.finished_at


def test_long_line_is_split_into_chunks_sharing_a_time(env: Env) -> None:
    # 40 KiB of 'x' plus a newline: chunks of 16 KiB, 16 KiB and 8 KiB + "\n".
    record = run_to_exit(env, ["/bin/sh", "-c", "head -c 40960 /dev/zero | tr '\\0' x; echo"])
    assert record.exit_code == 0
    chunks = [json.loads(line) for line in env.log_lines()]
    assert [len(c["log"]) for c in chunks] == [16384, 16384, 8193]
    assert [c["log"].endswith("\n") for c in chunks] == [False, False, True]
    assert len({c["time"] for c in chunks}) == 1
    (entry,) = read_logs(env.state_dir / "json.log")
    assert entry.text == "x" * 40960 + "\n"


def numbers_in(path: Path) -> list[int]:
    return [int(json.loads(line)["log"]) for line in path.read_bytes().splitlines()]


def test_rotation_keeps_max_files_and_blocking_loses_no_line(env: Env) -> None:
    log = LogOptions(path=env.state_dir / "json.log", max_size=64 * 1024, max_files=40)
    record = run_to_exit(env, ["seq", "1", "20000"], log=log)
    assert record.exit_code == 0 and record.dropped_log_lines == 0
    files = sorted(env.state_dir.glob("json.log*"))
    # ~1.4 MB of entries in 64 KiB files: all fit in 40 files, so nothing was deleted.
    assert 15 <= len(files) < 40
    for path in files:
        if path.name != "json.log":
            size = path.stat().st_size
            assert 64 * 1024 <= size < 64 * 1024 + 200
    entries = list(read_logs(env.state_dir / "json.log"))
    assert [int(e.text) for e in entries] == list(range(1, 20001))


def test_rotation_deletes_the_oldest_beyond_max_files(env: Env) -> None:
    log = LogOptions(path=env.state_dir / "json.log", max_size=16 * 1024, max_files=3)
    record = run_to_exit(env, ["seq", "1", "20000"], log=log)
    assert record.exit_code == 0
    names = sorted(p.name for p in env.state_dir.glob("json.log*"))
    assert names == ["json.log", "json.log.1", "json.log.2"]
    kept = [int(e.text) for e in read_logs(env.state_dir / "json.log")]
    # What is kept is the newest part, without a gap.
    assert kept == list(range(kept[0], 20001)) and kept[0] > 1
    assert (
        numbers_in(env.state_dir / "json.log.2")[-1] + 1
        == numbers_in(env.state_dir / "json.log.1")[0]
    )


def test_non_blocking_drops_and_counts_instead_of_stalling(env: Env) -> None:
    log = LogOptions(path=env.state_dir / "json.log", mode=LogMode.NON_BLOCKING, max_buffer=4096)
    # The writer sleeps before every write (test-only option): a disk far slower than
    # the container. The container must still finish, and every line be either
    # written or counted as dropped.
    record = run_to_exit(env, ["seq", "1", "20000"], log=log, test_write_delay_ms=20)
    assert record.exit_code == 0
    written = [int(e.text) for e in read_logs(env.state_dir / "json.log")]
    assert record.dropped_log_lines > 0
    assert len(written) + record.dropped_log_lines == 20000
    assert written == sorted(written) and written[0] == 1


def test_log_driver_none_writes_nothing_but_drains(env: Env) -> None:
    log = LogOptions(path=None, driver=LogDriver.NONE)
    # 1 MB of output would block the container if nobody read the pipe.
    record = run_to_exit(env, ["/bin/sh", "-c", "seq 1 200000; exit 7"], log=log)
    assert record.exit_code == 7
    assert not list(env.state_dir.glob("json.log*"))


def test_tty_output_lands_in_the_log_as_stdout(env: Env) -> None:
    bundle = env.bundle(["/bin/sh", "-c", "echo to-out; echo to-err >&2"], tty=True)
    env.launch(env.options(bundle, tty=True))
    env.start()
    record = env.exit_record()
    assert record.exit_code == 0
    entries = list(read_logs(env.state_dir / "json.log"))
    # A pty merges the streams and turns "\n" into "\r\n".
    assert [(e.stream, e.text) for e in entries] == [
        (LogStream.STDOUT, "to-out\r\n"),
        (LogStream.STDOUT, "to-err\r\n"),
    ]


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "tty"])
def test_attach_socket_feeds_the_container_stdin(env: Env, tty: bool) -> None:
    handle = env.launch(env.options(env.bundle(["cat"], tty=tty), tty=tty, open_stdin=True))
    env.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(handle.attach_socket))
        client.sendall(b"ping-through-stdin\n")
    wait_for(
        "cat's echo in the log",
        lambda: any(b"ping-through-stdin" in line for line in env.log_lines()),
        LONG_WAIT,
    )
    env.runc("kill", env.container_id, "KILL")
    record = env.exit_record()
    assert record.exit_code == 137
    assert not handle.attach_socket.exists()
