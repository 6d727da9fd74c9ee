"""One suite for every container manager the front ends may be given: the real `Manager`
(on the recording runtime) and the front ends' `FakeManager`, so the fake cannot drift
from what the front ends really talk to (containerd's contract-suite idea)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocirt.config.ditto import parse_update
from ocirt.config.model import ContainerConfig, ContainerId, NetworkMode
from ocirt.config.state import Status
from ocirt.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    RuncError,
    ValidationError,
)
from ocirt.manager.types import Event, StopOptions
from tests.support.fake_env import FakeEnv
from tests.support.fake_manager import FakeManager
from tests.support.waiting import wait_for

CONFIG = ContainerConfig(network_mode=NetworkMode.HOST, cmd=("sleep", "1000"))


@pytest.fixture(params=["manager", "fake"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeManager()
        return
    env = FakeEnv(tmp_path)
    try:
        yield env.manager()
    finally:
        env.close()


def events_of(manager: Any) -> list[Event]:
    seen: list[Event] = []
    manager.subscribe(seen.append)
    return seen


def test_create_defaults_the_config_and_names(manager: Any) -> None:
    named = manager.create("busybox", CONFIG, "web")
    assert (named.name, named.image_ref) == ("web", "busybox")
    assert named.state.status is Status.CREATED
    assert named.config.host_name == "web-host"
    unnamed = manager.create("busybox", CONFIG)
    assert unnamed.name == unnamed.id
    assert unnamed.config.host_name == f"{unnamed.id}-host"
    assert {v.id for v in manager.list()} == {named.id, unnamed.id}


def test_names_are_unique_and_valid(manager: Any) -> None:
    first = manager.create("busybox", CONFIG, "one")
    with pytest.raises(AlreadyExists) as info:
        manager.create("busybox", CONFIG, "one")
    assert info.value.message == "container with name = one already exists"
    with pytest.raises(ValidationError):
        manager.create("busybox", CONFIG, "bad name")
    other = manager.create("busybox", CONFIG, "two")
    with pytest.raises(AlreadyExists):
        manager.rename(other.id, "one")
    with pytest.raises(ValidationError) as bad:
        manager.rename(first.id, "no spaces")
    assert bad.value.message == "invalid container name format : no spaces"
    manager.rename(first.id, "")
    assert manager.get(first.id).name == "one"
    manager.rename(first.id, "three")
    assert manager.get(first.id).name == "three"


def test_a_requested_id_is_honoured_once_and_checked(manager: Any) -> None:
    view = manager.create("busybox", CONFIG, "asked", container_id="my-app.1")
    assert view.id == "my-app.1"
    assert manager.get(ContainerId("my-app.1")).name == "asked"
    # The id's defaults follow the requested id, as for a generated one.
    unnamed = manager.create("busybox", CONFIG, container_id="plain")
    assert (unnamed.name, unnamed.config.host_name) == ("plain", "plain-host")
    with pytest.raises(InvalidArgument) as taken:
        manager.create("busybox", CONFIG, "other", container_id="my-app.1")
    assert taken.value.status == 400
    assert taken.value.message == "container with id = my-app.1 already exists"
    for bad in ("../etc", "-x", "a/b", ""):
        with pytest.raises(InvalidArgument) as invalid:
            manager.create("busybox", CONFIG, "other", container_id=bad)
        assert invalid.value.message == f"invalid container id {bad!r}"
    assert {v.id for v in manager.list()} == {"my-app.1", "plain"}


def test_lifecycle_states_and_refusals(manager: Any) -> None:
    cid = manager.create("busybox", CONFIG, "life").id
    with pytest.raises(FailedPrecondition) as info:
        manager.stop(cid, StopOptions())
    assert info.value.message == (
        f"cannot perform stop operation for container: {cid}, with state: Created"
    )
    manager.start(cid)
    assert manager.get(cid).state.status is Status.RUNNING
    with pytest.raises(FailedPrecondition) as running:
        manager.start(cid)
    assert running.value.message == f"the container with id = {cid} is already running"
    manager.pause(cid)
    assert manager.get(cid).state.status is Status.PAUSED
    with pytest.raises(FailedPrecondition) as paused:
        manager.remove(cid)
    assert paused.value.message == (
        f"container with id = {cid} is not stopped - must set the force flag to true to remove it"
    )
    manager.resume(cid)
    assert manager.get(cid).state.status is Status.RUNNING
    manager.stop(cid, StopOptions())
    assert manager.get(cid).state.status is Status.STOPPED
    manager.update(cid, parse_update({"restartPolicy": {"type": "always"}}))
    assert manager.get(cid).config.restart_policy.type.value == "always"
    manager.remove(cid)
    with pytest.raises(NotFound) as gone:
        manager.get(ContainerId(cid))
    assert gone.value.message == f"no such container with id = {cid} exists"


def test_events_in_kantos_order(manager: Any) -> None:
    seen = events_of(manager)
    cid = manager.create("busybox", CONFIG, "ordered").id
    manager.start(cid)
    manager.rename(cid, "renamed")
    manager.remove(cid, True)
    expected = [
        ("created", "CREATED"),
        ("state", "CREATED"),
        ("state", "RUNNING"),
        ("renamed", "RUNNING"),
        ("state", "DEAD"),
        ("removed", "DEAD"),
    ]
    wait_for("the events", lambda: len(seen) >= len(expected))
    assert [(e.kind.value, e.container.state.status.name) for e in seen] == expected
    assert seen[3].container.name == "renamed"


def test_create_with_start_stands_when_the_start_fails(manager: Any) -> None:
    started = manager.create("busybox", CONFIG, "at-once", start=True)
    assert started.state.status is Status.RUNNING
    failure = RuncError("runc run failed")
    if isinstance(manager, FakeManager):
        manager.fail_start = failure
    else:
        manager.runtime.fail("launch", failure)
    failed = manager.create("busybox", CONFIG, "fails", start=True)
    assert failed.state.status is Status.STOPPED
    assert failed.state.error == "runc run failed"
    assert {v.name for v in manager.list()} == {"at-once", "fails"}
