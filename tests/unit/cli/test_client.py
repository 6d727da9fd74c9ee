"""The CLI's local-API client against plain unix sockets: what it sends, how it reads
answers, and how it fails when the daemon is absent, stuck or says nonsense."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocirt.cli.client import decode, encode, request, stream
from ocirt.cli.common import CliError


def test_no_daemon_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="cannot reach the ocirt daemon"):
        request(tmp_path / "absent.sock", "list", {})


def test_connect_timeout_bounds_reaching_a_daemon_that_does_not_accept(tmp_path: Path) -> None:
    # A listener whose backlog is full: connect() blocks until accepted, which never is.
    path = tmp_path / "busy.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    waiting = []
    try:
        server.bind(str(path))
        server.listen(0)
        for _ in range(4):
            extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            extra.setblocking(False)
            waiting.append(extra)
            try:
                extra.connect(str(path))
            except BlockingIOError:
                break
        with pytest.raises(CliError, match="cannot reach the ocirt daemon"):
            request(path, "sysinfo", {}, timeout=None, connect_timeout=0.2)
    finally:
        for extra in waiting:
            extra.close()
        server.close()


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[Path, list[bytes], list[bytes]]]:
    """A one-connection server that records the request line and answers with the lines
    the test puts in `replies` (then closes)."""
    path = tmp_path / "d.sock"
    received: list[bytes] = []
    replies: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as reader:
            received.append(reader.readline())
            # A client that stops reading (after a stream's closing line) may be gone
            # before the last lines are sent: that is what some tests check.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for line in replies:
                    conn.sendall(line)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path, replies, received
    finally:
        listener.close()
        thread.join(timeout=5)


def test_request_sends_one_json_line_and_returns_the_result(
    scripted: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, replies, received = scripted
    replies.append(b'{"ok": true, "result": {"id": "c1"}}\n')
    assert request(path, "get", {"id": "web"}) == {"id": "c1"}
    assert json.loads(received[0]) == {"op": "get", "args": {"id": "web"}}


def test_error_answer_becomes_a_cli_error_with_the_daemons_status(
    scripted: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, replies, _ = scripted
    error = {"status": 404, "code": "things:feature.notfound", "message": "no such container"}
    replies.append(json.dumps({"ok": False, "error": error}).encode() + b"\n")
    with pytest.raises(CliError) as caught:
        request(path, "start", {"id": "x"})
    assert (caught.value.status, caught.value.code, caught.value.message) == (
        404,
        "things:feature.notfound",
        "no such container",
    )


def test_error_answer_without_details_is_a_500(
    scripted: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, replies, _ = scripted
    replies.append(b'{"ok": false}\n')
    with pytest.raises(CliError) as caught:
        request(path, "list", {})
    assert (caught.value.status, caught.value.message) == (500, "unknown error")


def test_stream_yields_each_message_up_to_the_closing_one(
    scripted: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, replies, _ = scripted
    replies += [b'{"log": {"log": "a"}}\n', b'{"log": {"log": "b"}}\n', b'{"ok": true}\n']
    replies.append(b'{"log": {"log": "after the end"}}\n')
    messages = list(stream(path, "logs", {"id": "c1"}))
    assert messages == [{"log": {"log": "a"}}, {"log": {"log": "b"}}, {"ok": True}]


def test_connection_closed_without_an_answer_is_unavailable(
    scripted: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, replies, _ = scripted
    replies.append(b'{"log": {"log": "a"}}\n')
    with pytest.raises(CliError, match="closed the connection without an answer"):
        request(path, "list", {})


def test_garbage_from_the_daemon_is_unavailable(
    scripted: tuple[Path, list[bytes], list[bytes]],
) -> None:
    path, replies, _ = scripted
    replies.append(b"this is not json\n")
    with pytest.raises(CliError, match="talking to the ocirt daemon failed"):
        request(path, "list", {})


VALUES = [
    None,
    True,
    0,
    -17,
    2**70,
    2.5,
    1e-07,
    "",
    "plain",
    'quote " backslash \\ newline \n tab \t nul \x00',
    "é ü 中 😀",
    [],
    {},
    {"op": "create", "args": {"value": {"imageRef": "img", "start": False, "config": {
        "env": ["A=1"], "cmd": ["sh", "-c", "echo hi"], "rp": {"retryTimeout": 30.0},
        "portMappings": [{"hostPort": 80, "hostIP": "0.0.0.0"}]}}}},
    (1, "a"),
]  # fmt: skip


@pytest.mark.parametrize("value", VALUES)
def test_encode_is_json_dumps(value: object) -> None:
    assert encode(value) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES)
def test_decode_is_json_loads(value: object) -> None:
    text = json.dumps(value)
    assert decode(text) == json.loads(text)
    assert decode(f" \n{text}\r\n".encode()) == json.loads(text)
    assert decode(json.dumps(value, ensure_ascii=False).encode()) == json.loads(text)


def test_decode_takes_what_the_daemon_may_send_and_refuses_the_rest() -> None:
    assert decode(b'{"x": NaN, "y": Infinity}')["y"] == float("inf")
    for bad in (b"", b"nonsense", b'{"a": 1} {"b": 2}', b'{"a": ', b"\xff"):
        with pytest.raises(ValueError):
            decode(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1: "x"}, {"a": object()}])
def test_encode_refuses_what_is_not_json(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode(value)
