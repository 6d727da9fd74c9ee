"""The local API over a real unix socket (in tmp) with the in-memory manager."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ocirt.cli.client import request
from ocirt.cli.common import CliError
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
    assert request(path, "rename", {"id": "web", "newName": "db"})["name"] == "db"
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
        ("start", {"id": "nope"}, 404, "The requested container with ID = nope was not found."),
        ("start", {"name": "nope"}, 404,
         "The requested container with name = nope was not found. Try using an ID instead."),
        ("start", {"name": ""}, 400, "a container name is required"),
        ("start", {}, 400, "a container id or name is required"),
        ("teleport", {"id": "c1"}, 400, "unknown operation 'teleport'"),
        ("create", {"value": {"imageRef": "i", "config": {"env": ["1x"]}}}, 400,
         "invalid environmental variable declaration provided : 1x"),
        ("stop", {"id": "c1", "timeout": "soon"}, 400, "timeout must be a number of seconds"),
        ("stop", {"id": "c1", "timeout": -1}, 400, "timeout must be a number of seconds >= 0"),
    ],
)  # fmt: skip
def test_errors_carry_status_and_message(
    api: tuple[Path, FakeManager], op: str, args: dict[str, object], status: int, message: str
) -> None:
    path, _ = api
    request(path, "create", {"value": {"imageRef": "i", "start": True}})
    with pytest.raises(CliError) as caught:
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
    assert created["state"]["status"] == "STOPPED"
    assert created["state"]["error"] == "runc run failed"
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
        with pytest.raises(CliError) as caught:
            request(path, "stats", {"ids": ["nope"]})
        assert caught.value.status == 404
        with pytest.raises(CliError, match="ids must be a list"):
            request(path, "stats", {"ids": "web"})
    finally:
        server.close()


def test_stats_without_a_collector_is_unavailable(api: tuple[Path, FakeManager]) -> None:
    path, _ = api
    with pytest.raises(CliError, match="does not collect metrics"):
        request(path, "stats", {})


def test_a_container_is_found_by_id_name_or_unique_id_prefix(
    api: tuple[Path, FakeManager],
) -> None:
    path, manager = api
    for name in ("web", "db"):
        request(path, "create", {"value": {"imageRef": "img", "name": name}})
    ids = sorted(manager.views)
    assert ids == ["c1", "c2"]
    assert request(path, "get", {"id": "c2"})["name"] == "db"
    assert request(path, "get", {"id": "web"})["id"] == "c1"
    assert request(path, "get", {"name": "db"})["id"] == "c2"
    # -n is a name only: an id given as a name is not found.
    with pytest.raises(CliError, match="with name = c1 was not found"):
        request(path, "get", {"name": "c1"})
    manager.views["abc-1"] = replace(manager.views.pop("c1"), id="abc-1")
    manager.views["abd-2"] = replace(manager.views.pop("c2"), id="abd-2")
    assert request(path, "get", {"id": "abc"})["name"] == "web"
    with pytest.raises(CliError) as caught:
        request(path, "get", {"id": "ab"})
    assert (caught.value.status, caught.value.message) == (
        400,
        "The container ID prefix = ab is ambiguous: it matches 2 containers "
        "(abc-1, abd-2). Give more of the ID.",
    )


def test_forced_remove_with_a_timeout_stops_gracefully_first(
    api: tuple[Path, FakeManager],
) -> None:
    path, manager = api
    request(path, "create", {"value": {"imageRef": "img", "name": "web", "start": True}})
    request(path, "create", {"value": {"imageRef": "img", "name": "idle"}})
    assert request(path, "remove", {"id": "web", "force": True, "timeout": 4}) == {"id": "c1"}
    assert [c[:2] for c in manager.calls[-2:]] == [("stop", "c1"), ("remove", "c1")]
    assert manager.calls[-2][2] == StopOptions("SIGTERM", 4.0, True)
    # Not running: nothing to stop.
    request(path, "remove", {"name": "idle", "force": True, "timeout": 4})
    assert manager.calls[-1] == ("remove", "c2", True)
    assert manager.calls[-2][0] != "stop"


def test_get_in_kantos_model(api: tuple[Path, FakeManager]) -> None:
    path, _ = api
    request(path, "create", {"value": {"imageRef": "img", "name": "web", "start": True,
                                       "config": {"env": ["A=1"]}}})  # fmt: skip
    got = request(path, "get", {"name": "web", "format": "kanto"})
    assert (got["container_id"], got["container_name"], got["image"]) == (
        "c1", "web", {"name": "img"}
    )  # fmt: skip
    assert got["config"]["env"] == ["A=1"]
    assert got["state"]["status"] == 2  # Kanto's RUNNING
    assert got["state"]["running"] is True and got["state"]["pid"] == 4242
    assert got["created"] == "2024-05-01T10:00:00.123456789Z"


def test_a_descriptor_is_started_when_asked(api: tuple[Path, FakeManager]) -> None:
    path, _ = api
    descriptor = '{"container_name": "d", "image": {"name": "img"}}'
    created = request(path, "create", {"descriptor": descriptor, "start": True})
    assert created["state"]["status"] == "RUNNING"
    created = request(path, "create", {"descriptor": descriptor.replace('"d"', '"e"')})
    assert created["state"]["status"] == "CREATED"
