"""The container store: Kanto's persisted format, round trips, crash leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyfakefs.fake_filesystem_unittest import Patcher

from ocirt import atomic
from ocirt.atomic import TEMP_PREFIX
from ocirt.config.defaults import fill_defaults
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    ContainerId,
    NetworkMode,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.config.state import Status
from ocirt.errors import NotFound
from ocirt.manager.types import ContainerState
from ocirt.store.containers import ContainerStore, StoredContainer, Unreadable
from ocirt.store.record import RuntimeRecord

HOME = Path("/var/lib/container-management")
CID = ContainerId("5b0b0c46-8f4e-4bd8-9c5f-1c2f0a8e8a10")


@pytest.fixture
def store() -> object:
    with Patcher() as patcher:
        assert patcher.fs is not None
        yield ContainerStore(HOME)


def _stored(cid: str = CID, **runtime: object) -> StoredContainer:
    config = ContainerConfig(
        network_mode=NetworkMode.HOST,
        cmd=("sh", "-c", "echo hi"),
        restart_policy=RestartPolicy(RestartPolicyType.ON_FAILURE, 3, 20),
    )
    definition = fill_defaults(ContainerDefinition(ContainerId(cid), "web", "busybox:1", config))
    record = RuntimeRecord(
        state=ContainerState(
            Status.EXITED, pid=-1, exit_code=3, finished_at="2024-05-01T10:00:01Z"
        ),
        created="2024-05-01T10:00:00.5Z",
        restart_count=2,
        **runtime,  # type: ignore[arg-type]
    )
    return StoredContainer(definition, record, {"network_settings": {"networks": {}}})


def test_save_load_round_trip(store: ContainerStore) -> None:
    stored = _stored(manually_stopped=True, started_successfully_before=True)
    store.save(stored)
    loaded = store.load(CID)
    assert loaded.definition == stored.definition
    assert loaded.runtime == stored.runtime
    assert dict(loaded.extras) == {"network_settings": {"networks": {}}}


def test_file_is_kantos_format(store: ContainerStore) -> None:
    store.save(_stored(started_successfully_before=True))
    raw = json.loads((HOME / "containers" / CID / "config.json").read_text())
    assert raw["container_id"] == CID
    assert raw["container_name"] == "web"
    assert raw["image"]["name"] == "busybox:1"
    assert raw["host_config"]["restart_policy"]["type"] == "on-failure"
    # Go nanoseconds for retry_timeout (docs/kanto-compatibility.md §3).
    assert raw["host_config"]["restart_policy"]["retry_timeout"] == 20 * 10**9
    assert raw["state"] == {
        "pid": -1,
        "started_at": "",
        "error": "",
        "exit_code": 3,
        "finished_at": "2024-05-01T10:00:01Z",
        "exited": True,
        "dead": False,
        "restarting": False,
        "paused": False,
        "running": False,
        "oomKilled": False,
        "status": 5,
    }
    assert raw["created"] == "2024-05-01T10:00:00.5Z"
    assert raw["restart_count"] == 2
    assert raw["manually_stopped"] is False
    assert raw["started_successfully_before"] is True


def test_a_kanto_written_file_loads(store: ContainerStore) -> None:
    directory = HOME / "containers" / "k1"
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(
        json.dumps(
            {
                "container_id": "k1",
                "container_name": "influx",
                "image": {"name": "docker.io/library/influxdb:1.8.4"},
                "host_config": {
                    "network_mode": "bridge",
                    "restart_policy": {"type": "unless-stopped"},
                    "log_config": {
                        "driver_config": {"type": "json-file", "max_files": 2, "max_size": "100M"},
                        "mode_config": {"mode": "blocking"},
                    },
                },
                "io_config": {},
                "config": {},
                "state": {"pid": 1234, "running": True, "status": 2, "started_at": "x"},
                "created": "2024-01-01T00:00:00Z",
                "restart_count": 0,
                "manually_stopped": False,
                "started_successfully_before": True,
            }
        )
    )
    result = store.load_all()
    assert [c.definition.id for c in result.containers] == ["k1"]
    loaded = result.containers[0]
    assert loaded.definition.config.host_name == "influx-host"
    assert loaded.runtime.state.status is Status.RUNNING
    assert loaded.runtime.state.pid == 1234
    assert loaded.runtime.started_successfully_before


def test_load_all_reports_half_created_and_cleans_temp_files(store: ContainerStore) -> None:
    store.save(_stored())
    half = HOME / "containers" / "half"
    (half / "bundle").mkdir(parents=True)
    (HOME / "containers" / CID / f"{TEMP_PREFIX}config.json.deadbeef").write_text("{")
    (HOME / "containers" / f"{TEMP_PREFIX}stray").write_text("")
    result = store.load_all()
    assert [c.definition.id for c in result.containers] == [CID]
    assert result.half_created == ("half",)
    assert sorted(p.name for p in (HOME / "containers" / CID).iterdir()) == ["config.json"]
    assert not (HOME / "containers" / f"{TEMP_PREFIX}stray").exists()
    store.remove_half_created("half")
    assert not half.exists()


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'{"container_id": 5}',
        b'{"container_id":"x","image":{"name":"i"},"state":{"status":42}}',
        b'{"container_id":"x","image":{"name":"i"},"restart_count":"many"}',
        b"\xff\xfe",
    ],
)
def test_unreadable_files_are_reported_not_raised(store: ContainerStore, content: bytes) -> None:
    directory = HOME / "containers" / "x"
    directory.mkdir(parents=True)
    (directory / "config.json").write_bytes(content)
    result = store.load_all()
    assert result.containers == ()
    assert [u.id for u in result.unreadable] == ["x"]


@pytest.mark.parametrize("trace", ["bundle/config.json", "json.log", "monitor/exit.json"])
def test_a_container_that_ran_and_lost_its_config_is_damaged_not_half_created(
    store: ContainerStore, trace: str
) -> None:
    directory = HOME / "containers" / "ran"
    (directory / "bundle" / "rootfs").mkdir(parents=True)
    (directory / "monitor").mkdir()
    (directory / trace).write_text("{}")
    result = store.load_all()
    assert result.half_created == ()
    assert result.unreadable == (Unreadable("ran", "config.json is missing"),)
    assert directory.exists()


def test_remove_deletes_directory_and_external_log_dir(store: ContainerStore) -> None:
    stored = _stored()
    store.save(stored)
    paths = store.paths(CID, "/var/log/ctr")
    store.prepare_dirs(paths)
    paths.log.write_text("{}\n")
    store.remove(CID, "/var/log/ctr")
    assert not paths.root.exists()
    assert not paths.log_dir.exists()
    with pytest.raises(NotFound):
        store.load(CID)


def test_paths_follow_kantos_layout(store: ContainerStore) -> None:
    paths = store.paths(CID)
    base = f"{HOME}/containers/{CID}"
    assert str(paths.config) == f"{base}/config.json"
    assert str(paths.log) == f"{base}/json.log"
    assert str(paths.spec) == f"{base}/bundle/config.json"
    assert str(paths.monitor) == f"{base}/monitor"
    assert str(store.paths(CID, "/logs").log) == f"/logs/{CID}/json.log"
    assert ContainerStore(HOME).load_all().containers == ()


def test_prepare_dirs_syncs_only_entries_outside_the_container_dir(
    store: ContainerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(atomic, "fsync_dir", lambda p: synced.append(str(p)))
    paths = store.paths(CID)
    store.prepare_dirs(paths)
    assert paths.bundle.is_dir() and paths.monitor.is_dir()
    # The containers dir is new (its parent synced) and so is the container's entry in
    # it; bundle/ and monitor/ ride on the directory fsync of the first full save.
    assert synced == [str(HOME), f"{HOME}/containers"]
    synced.clear()
    store.save(_stored())
    assert synced == [str(paths.root)]
    synced.clear()
    other = store.paths("c2", "/var/log/ctr")
    store.prepare_dirs(other)
    # An external log dir is outside the container's dir: its entry is synced too.
    assert synced == [f"{HOME}/containers", "/var/log/ctr"]
    assert other.log_dir.is_dir()
