"""Slow pulls against control: creates that hang on a registry that never finishes a
manifest take only their own lane, so a stop of another container is still answered; a
full queue is answered 503 at once (MQTT and the local API); commands still queued when
SIGTERM arrives are answered 503 before the daemon exits."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from service_harness import IMAGE, WAIT, Cloud, Service, state_updates

from ocirt.cli.client import request
from ocirt.cli.errors import CliError

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]
CREATE_WORKERS = 2
QUEUE = 2


class StallingRegistry:
    """An HTTP server on 127.0.0.1 that starts every answer and never finishes it."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError):
                conn.settimeout(WAIT)
                if conn.recv(65536).startswith(b"GET /v2/ "):  # the API probe
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    conn.close()
                    continue
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\n"
                    b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
                    b"Content-Length: 100000\r\n\r\n{"
                )
            with self.cond:
                self.held.append(conn)
                self.cond.notify_all()

    def wait_requests(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.held) >= count, WAIT), "no pulls came"

    def close(self) -> None:
        self.listener.close()
        with self.cond:
            for conn in self.held:
                conn.close()


@pytest.fixture
def stalling() -> Iterator[StallingRegistry]:
    registry = StallingRegistry()
    try:
        yield registry
    finally:
        registry.close()


def create_running(cloud: Cloud, name: str) -> str:
    value = {"imageRef": IMAGE, "name": name, "start": True, "config": {"cmd": SERVE}}
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    assert got.body["status"] == 200, got.body
    cid: str = got.body["value"]
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: "RUNNING" in state_updates(t, cid))
    return cid


def test_control_is_answered_while_pulls_hang_and_a_full_queue_is_503(
    service: Service, cloud: Cloud, stalling: StallingRegistry
) -> None:
    host = f"127.0.0.1:{stalling.port}"
    service.extra_config = {
        "containers": {"insecure_registries": [host]},
        "limits": {"create_workers": CREATE_WORKERS, "command_queue_size": QUEUE},
    }
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    other = create_running(cloud, "other")

    def stalled(tag: int) -> dict[str, object]:
        # One image each: pulls of one image share a single download.
        return {"imageRef": f"{host}/stall:{tag}", "start": True}

    # Two creates hang in the registry, two more wait behind them: the lane is full.
    hanging = [cloud.send("createWithConfig", "ContainerFactory", stalled(n)) for n in (1, 2)]
    stalling.wait_requests(CREATE_WORKERS)
    hanging += [cloud.send("createWithConfig", "ContainerFactory", stalled(n)) for n in (3, 4)]

    refused = cloud.call("createWithConfig", "ContainerFactory", stalled(5))
    assert refused.topic.endswith("/503")
    assert refused.body["status"] == 503
    assert refused.body["value"]["error"] == "messages:service.unavailable"
    with pytest.raises(CliError) as local:
        request(service.socket, "create", {"value": stalled(6)}, timeout=WAIT)
    assert local.value.status == 503

    # Control goes on, over MQTT and over the local API.
    assert cloud.call("stop", f"Container:{other}", {}).body["status"] == 204
    cloud.wait_twin(f"/features/Container:{other}", lambda t: "STOPPED" in state_updates(t, other))
    # By name too: names resolve through Manager.list(), which does not wait for the
    # hanging creates.
    started = request(service.socket, "start", {"name": "other"}, timeout=WAIT)
    assert started["state"]["status"] == "RUNNING"
    assert request(service.socket, "get", {"id": other}, timeout=WAIT)["name"] == "other"
    early = [m for m in cloud.messages if "/res/" in m.topic and m.topic.split("/")[4] in hanging]
    assert early == [], "a hanging create was answered"

    # SIGTERM: the two creates still queued are answered 503 before the daemon exits
    # (it waits for the broker's PUBACK of each answer before it disconnects).
    assert service.stop() == 0
    queued = hanging[CREATE_WORKERS:]
    for req in queued:
        body = cloud.response(req).body
        assert body["status"] == 503
        assert "the daemon is stopping" in body["value"]["message"]
    # The creates hanging in the registry: their pulls are cancelled at once (no wait
    # for the stop timeout), and they are answered with the reason, not left silent.
    for req in hanging[:CREATE_WORKERS]:
        body = cloud.response(req).body
        assert body["status"] == 500, body
        assert "cancelled: the daemon is stopping" in body["value"]["message"]


def _closed_by_peer(conn: socket.socket) -> bool:
    try:
        return conn.recv(1, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False


def test_local_api_bounds(service: Service, cloud: Cloud) -> None:
    service.extra_config = {"limits": {"api_max_connections": 3, "api_idle_timeout": "1s"}}
    service.start()

    # A silent connection is closed by the daemon, not held for ever.
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(service.socket))
    silent.settimeout(WAIT)
    assert silent.recv(100) == b""
    silent.close()

    # A request nested deeper than the parser goes is answered 400, and the daemon stays.
    deep = b'{"op": "get", "args": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n"
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(WAIT)
        conn.connect(str(service.socket))
        conn.sendall(deep)
        answer = conn.makefile("rb").readline()
    assert b'"status": 400' in answer
    assert b"nested too deeply" in answer

    # Connections over the cap are answered 503 at once. The held ones are silent, so
    # on a loaded machine the 1 s idle timeout can free them before the next request
    # arrives: such a round proves nothing and is tried again; a success while all
    # three are still open is a failure.
    refusal = None
    for _ in range(5):
        held = []
        for _ in range(3):
            conn = socket.socket(socket.AF_UNIX)
            conn.connect(str(service.socket))
            held.append(conn)
        try:
            try:
                request(service.socket, "list", {}, timeout=WAIT)
            except CliError as error:
                refusal = error
                break
            assert any(_closed_by_peer(conn) for conn in held), "a 4th connection was served"
        finally:
            for conn in held:
                conn.close()
    assert refusal is not None
    assert refusal.status == 503
    assert "too many local API connections" in refusal.message
    deadline = time.monotonic() + WAIT
    while True:  # the daemon notices the closed connections at its next read
        try:
            assert request(service.socket, "list", {}, timeout=WAIT) == []
            break
        except CliError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert service.proc is not None and service.proc.poll() is None
