"""Fixtures of the manager suites; every monitor and container is cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocirt.manager.manager import Manager
from tests.support.env import Env
from tests.support.recorder import Recorder


@pytest.fixture
def env(runc_root: Path, busybox_rootfs: Path, cgroup_parent: str) -> Iterator[Env]:
    # Everything under the private /run/ocirt-test-* dir (removed by runc_root): short
    # paths, because the monitor's unix sockets live in the state dir (sun_path limit).
    exec_root = runc_root.parent / "exec"
    the_env = Env(runc_root.parent / "home", exec_root, runc_root, busybox_rootfs, cgroup_parent)
    try:
        yield the_env
    finally:
        the_env.clean_up()


@pytest.fixture
def mgr(env: Env) -> Manager:
    return env.manager()


@pytest.fixture
def events(mgr: Manager) -> Recorder:
    recorder = Recorder()
    mgr.subscribe(recorder)
    return recorder
