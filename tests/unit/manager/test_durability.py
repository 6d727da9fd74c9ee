"""When a create's record and directories reach the disk: before the answer, always; for
a create with start, in one go after the launch rather than before it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirt.config.state import Status
from ocirt.errors import RuncError
from ocirt.manager.manager import Manager
from ocirt.store.containers import ContainerPaths
from tests.support.fake_env import FakeEnv, config


@pytest.fixture
def timeline(env: FakeEnv, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """fsync targets (paths relative to the home) and the runtime's launches, in order."""
    seen: list[str] = []
    home = env.base / "home"
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if target.is_relative_to(home):
            name = target.name if target.name.startswith(".tmp-") else str(target.relative_to(home))
            seen.append("fsync " + ("record" if "config.json" in name else name))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    launch: Callable[..., object] = env.runtime.launch

    def recorded(*args: object) -> object:
        seen.append("launch")
        return launch(*args)

    monkeypatch.setattr(env.runtime, "launch", recorded)
    return seen


def test_a_create_alone_is_durable_when_it_returns(mgr: Manager, timeline: list[str]) -> None:
    cid = mgr.create("busybox", config()).id
    assert timeline == ["fsync containers", "fsync record", f"fsync containers/{cid}"]


def test_a_create_with_start_syncs_its_directories_while_runc_starts(
    mgr: Manager, timeline: list[str]
) -> None:
    view = mgr.create("busybox", config(), start=True)
    assert view.state.status is Status.RUNNING
    cid = view.id
    # Before the launch: the record's content only (whole after a power cut). The
    # directories are synced in a thread beside the launch, before the answer; the
    # RUNNING record then needs no more than its content (the CREATED one is on disk).
    assert timeline[0] == "fsync record"
    assert timeline[-1] == "fsync record"
    assert sorted(timeline[1:-1]) == sorted(
        ["launch", f"fsync containers/{cid}", "fsync containers"]
    )


def test_directories_a_failed_settle_left_are_synced_by_the_next_save(
    env: FakeEnv, mgr: Manager, timeline: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_settle = mgr.store.settle
    calls: list[object] = []

    def broken_once(paths: ContainerPaths) -> None:
        calls.append(paths)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real_settle(paths)

    monkeypatch.setattr(mgr.store, "settle", broken_once)
    view = mgr.create("busybox", config(), start=True)
    assert view.state.status is Status.RUNNING
    # The RUNNING save did it (with the record's own directory fsync after the rename).
    after = timeline[timeline.index("launch") + 1 :]
    assert {f"fsync containers/{view.id}", "fsync containers"} <= set(after)
    assert len(calls) == 2


def test_a_create_whose_start_fails_is_durable_before_the_answer(
    env: FakeEnv, mgr: Manager, timeline: list[str]
) -> None:
    env.runtime.fail("launch", RuncError("runc run failed"))
    view = mgr.create("busybox", config(), start=True)
    assert view.state.status is Status.STOPPED  # the create stands (Kanto)
    assert {f"fsync containers/{view.id}", "fsync containers"} <= set(timeline)


def test_a_create_whose_start_is_refused_before_any_save_is_still_synced(
    env: FakeEnv, mgr: Manager, timeline: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(container_id: str) -> None:
        raise RuncError("refused before anything was saved")

    monkeypatch.setattr(mgr, "start", refuse)
    view = mgr.create("busybox", config(), start=True)
    assert view.state.status is Status.CREATED
    assert "launch" not in timeline
    assert timeline[-2:] == [f"fsync containers/{view.id}", "fsync containers"]
