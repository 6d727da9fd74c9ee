"""Exit notices: parsing hostile datagrams, and the listener on a real unix socket."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from ocirt.manager.exits import ExitListener, parse_notice


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"id":"abc","exitCode":3}\n', "abc"),
        (b'{"id":"abc"}', "abc"),
        (b"", None),
        (b"{", None),
        (b"[]", None),
        (b'{"id":5}', None),
        (b'{"id":""}', None),
        (b"\xff\xfe", None),
        (b'"abc"', None),
        (b"9" * 5000, None),
    ],
)
def test_parse_notice(data: bytes, expected: str | None) -> None:
    assert parse_notice(data) == expected


def test_listener_delivers_notices_and_survives_garbage(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    # A stale socket file from a killed manager must not block the bind.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()
    got: list[str] = []
    arrived = threading.Event()

    def on_notice(cid: str) -> None:
        got.append(cid)
        if cid == "second":
            arrived.set()

    def boom(cid: str) -> None:
        on_notice(cid)
        if cid == "first":
            raise RuntimeError("handler bug")

    listener = ExitListener(path, boom, sweep_interval=0.05)
    listener.start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"garbage", str(path))
            sender.sendto(b'{"id":"first","exitCode":0}', str(path))
            sender.sendto(b'{"id":"second","exitCode":1}', str(path))
        assert arrived.wait(5)
    finally:
        listener.close()
    assert got == ["first", "second"]
    assert not path.exists()


def test_listener_ticks(tmp_path: Path) -> None:
    ticked = threading.Event()
    listener = ExitListener(tmp_path / "n.sock", lambda cid: None, ticked.set, 0.01)
    listener.start()
    try:
        assert ticked.wait(5)
    finally:
        listener.close()
