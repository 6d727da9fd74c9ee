"""The manager's stand-in while the daemon starts: list and get from the records, the
rest once the manager is attached."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from ocirt.config.defaults import fill_defaults
from ocirt.config.model import ContainerConfig, ContainerDefinition, ContainerId
from ocirt.config.state import Status
from ocirt.daemon.early import StartingManager
from ocirt.errors import NotFound, Unavailable
from ocirt.manager.types import ContainerState
from ocirt.store.containers import ContainerStore, StoredContainer
from ocirt.store.record import RuntimeRecord


def _save(store: ContainerStore, cid: str, name: str, status: Status, created: str) -> None:
    definition = fill_defaults(
        ContainerDefinition(ContainerId(cid), name, "busybox:1", ContainerConfig())
    )
    record = RuntimeRecord(state=ContainerState(status, pid=7), created=created)
    store.save(StoredContainer(definition, record))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    store = ContainerStore(tmp_path)
    _save(store, "c2", "second", Status.RUNNING, "2024-05-01T10:00:02Z")
    _save(store, "c1", "first", Status.EXITED, "2024-05-01T10:00:01Z")
    _save(store, "c3", "half", Status.CREATING, "2024-05-01T10:00:03Z")
    _save(store, "c4", "gone", Status.DEAD, "2024-05-01T10:00:04Z")
    return tmp_path


class _Manager:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def list(self) -> list[str]:
        return ["from the manager"]

    def start(self, cid: str) -> str:
        self.calls.append(f"start {cid}")
        return cid


def test_lists_the_records_as_recovery_will_keep_them(home: Path) -> None:
    starting = StartingManager.load(home)
    views = starting.list()
    assert [(v.id, v.name, v.state.status) for v in views] == [
        ("c1", "first", Status.EXITED),
        ("c2", "second", Status.RUNNING),
    ]
    assert starting.get("c2").state.pid == 7
    with pytest.raises(NotFound):
        starting.get("c3")


def test_other_calls_wait_for_the_manager_then_go_to_it(home: Path) -> None:
    starting = StartingManager.load(home)
    manager = _Manager()
    result: list[Any] = []
    caller = threading.Thread(target=lambda: result.append(starting.start("c1")))
    caller.start()
    caller.join(0.2)
    assert caller.is_alive() and manager.calls == []
    starting.attach(manager)
    caller.join(5)
    assert result == ["c1"] and manager.calls == ["start c1"]
    assert starting.list() == ["from the manager"]


def test_a_manager_that_never_comes_is_unavailable(home: Path) -> None:
    starting = StartingManager(StartingManager.load(home).list(), wait=0.05)
    with pytest.raises(Unavailable):
        starting.stop("c1")
