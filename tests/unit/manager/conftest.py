"""The real manager on fakes, closed after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ocirt.manager.manager import Manager
from tests.support.fake_env import FakeEnv
from tests.support.recorder import Recorder


@pytest.fixture
def env(tmp_path: Path) -> Iterator[FakeEnv]:
    the_env = FakeEnv(tmp_path)
    try:
        yield the_env
    finally:
        the_env.close()


@pytest.fixture
def mgr(env: FakeEnv) -> Manager:
    return env.manager()


@pytest.fixture
def events(mgr: Manager) -> Recorder:
    recorder = Recorder()
    mgr.subscribe(recorder)
    return recorder
