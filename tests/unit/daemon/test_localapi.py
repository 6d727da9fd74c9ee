"""The local API over a real unix socket (in tmp) with the in-memory manager."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocirt.cli.client import request
from ocirt.daemon.localapi import ApiHandlers, LocalApi
from ocirt.errors import OcirtError
from ocirt.manager.types import StopOptions
from tests.support.fake_manager import FakeManager


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, FakeManager]]:
    manager = FakeManager()
    path = tmp_path / "run" / "ocirt.sock"
    server = LocalApi(path, ApiHandlers(manager, lambda: {"version": "t"}))
    server.start()
    try:
        yield path, manager
    finally:
        server.close()


def test_socket_is_private(api: tuple[Path, FakeManager]) -> None:
    path, _ = api
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_round_trip(api: tuple[Path, FakeManager]) -> None:
    path, manager = api
    value = {"imageRef": "img", "name": "web", "start": True}
    created = request(path, "create", {"value": value})
    assert (created["name"], created["state"]["status"]) == ("web", "RUNNING")
    assert request(path, "get", {"id": "web"})["id"] == created["id"]
    assert request(path, "pause", {"id": "web"})["state"]["status"] == "PAUSED"
    assert request(path, "resume", {"id": created["id"]})["state"]["status"] == "RUNNING"
    assert request(path, "stop", {"id": "web", "timeout": 3})["state"]["status"] == "STOPPED"
    assert manager.calls[-1][2].timeout == 3.0
    assert request(path, "rename", {"id": "web", "name": "db"})["name"] == "db"
    update = {"restartPolicy": {"type": "always"}}
    got = request(path, "update", {"id": "db", "value": update})
    assert got["config"]["restartPolicy"] == {"type": "ALWAYS"}
    assert [c["name"] for c in request(path, "list", {})] == ["db"]
    assert request(path, "sysinfo", {}) == {"version": "t"}
    assert request(path, "remove", {"id": "db"}) == {"id": created["id"]}
    assert request(path, "list", {}) == []


@pytest.mark.parametrize(
    ("op", "args", "status", "message"),
    [
        ("start", {"id": "nope"}, 404, "no such container with id = nope exists"),
        ("start", {}, 400, "a container id or name is required"),
        ("teleport", {"id": "c1"}, 400, "unknown operation 'teleport'"),
        ("create", {"value": {"imageRef": "i", "config": {"env": ["1x"]}}}, 400,
         "invalid environmental variable declaration provided : 1x"),
        ("stop", {"id": "c1", "timeout": "soon"}, 400, "timeout must be a number of seconds"),
    ],
)  # fmt: skip
def test_errors_carry_status_and_message(
    api: tuple[Path, FakeManager], op: str, args: dict[str, object], status: int, message: str
) -> None:
    path, _ = api
    request(path, "create", {"value": {"imageRef": "i", "start": True}})
    with pytest.raises(OcirtError) as caught:
        request(path, op, args)
    assert (caught.value.status, caught.value.message) == (status, message)


def test_malformed_requests_do_not_kill_the_server(api: tuple[Path, FakeManager]) -> None:
    path, _ = api
    for junk in (b"not json\n", b"[1]\n", b'{"op": 5}\n', b"\n", b'{"op":"list","args":5}\n'):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(junk)
            answer = sock.makefile("rb").readline()
        assert b'"ok": false' in answer
    assert request(path, "list", {}) == []


def test_stop_passes_only_what_was_given(api: tuple[Path, FakeManager]) -> None:
    path, manager = api
    request(path, "create", {"value": {"imageRef": "img", "name": "web", "start": True}})
    request(path, "stop", {"id": "web"})
    # A plain stop: the manager applies its default timeout and ends in SIGKILL.
    assert manager.calls[-1][2] == StopOptions("SIGTERM", None, True)
    request(path, "start", {"id": "web"})
    request(path, "stop", {"id": "web", "signal": "SIGINT", "force": False})
    assert manager.calls[-1][2] == StopOptions("SIGINT", None, False)


def test_a_failed_start_answers_the_created_container(api: tuple[Path, FakeManager]) -> None:
    path, manager = api
    manager.fail_start = OcirtError("runc run failed")
    created = request(path, "create", {"value": {"imageRef": "img", "name": "web", "start": True}})
    # As the MQTT front end (Kanto): the create stands, the container did not start.
    assert created["name"] == "web"
    assert created["state"]["status"] == "CREATED"
    assert [c["name"] for c in request(path, "list", {})] == ["web"]


def test_stats_resolves_names_and_passes_the_interval(tmp_path: Path) -> None:
    manager = FakeManager()
    asked: list[tuple[list[str] | None, object]] = []

    def stats(ids: list[str] | None, interval: object) -> object:
        asked.append((ids, interval))
        return [{"id": i} for i in ids or []]

    path = tmp_path / "ocirt.sock"
    server = LocalApi(path, ApiHandlers(manager, lambda: {}, stats=stats))
    server.start()
    try:
        created = request(path, "create", {"value": {"imageRef": "i", "name": "web"}})
        assert request(path, "stats", {"ids": ["web"], "interval": 0.5}) == [{"id": created["id"]}]
        assert request(path, "stats", {}) == []
        assert asked == [([created["id"]], 0.5), (None, 1.0)]
        with pytest.raises(OcirtError) as caught:
            request(path, "stats", {"ids": ["nope"]})
        assert caught.value.status == 404
        with pytest.raises(OcirtError, match="ids must be a list"):
            request(path, "stats", {"ids": "web"})
    finally:
        server.close()


def test_stats_without_a_collector_is_unavailable(api: tuple[Path, FakeManager]) -> None:
    path, _ = api
    with pytest.raises(OcirtError, match="does not collect metrics"):
        request(path, "stats", {})
