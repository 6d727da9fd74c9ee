"""The front ends' shared create: a failed start leaves the container created (Kanto)."""

from __future__ import annotations

from ocirt.config.ditto import CreateRequest
from ocirt.config.state import Status
from ocirt.errors import RuncError
from ocirt.manager import frontend
from ocirt.manager.manager import Manager
from tests.support.fake_env import FakeEnv, config


def test_create_and_start(env: FakeEnv, mgr: Manager) -> None:
    view = frontend.create(mgr, CreateRequest("busybox", start=True, config=config()))
    assert view.state.status is Status.RUNNING


def test_create_without_start(env: FakeEnv, mgr: Manager) -> None:
    view = frontend.create(mgr, CreateRequest("busybox", start=False, config=config()))
    assert view.state.status is Status.CREATED
    assert env.runtime.verbs(view.id) == []


def test_a_failed_start_keeps_the_container_with_its_error(env: FakeEnv, mgr: Manager) -> None:
    env.runtime.fail("launch", RuncError("runc run failed"))
    view = frontend.create(mgr, CreateRequest("busybox", start=True, config=config()))
    assert view.state.status is Status.STOPPED
    assert view.state.error == "runc run failed"
    assert [v.id for v in mgr.list()] == [view.id]
