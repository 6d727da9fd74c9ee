"""The activation gate of `ManagerContainers` over the in-memory manager."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ocirt.config.model import ContainerConfig
from ocirt.errors import OcirtError
from ocirt.manager.types import Status
from ocirt.updateagent.executor import ManagerContainers
from ocirt.updateagent.settings import UpdateAgentSettings
from tests.support.fake_manager import FakeManager


class FakeHealth:
    def __init__(self, status: str) -> None:
        self.status = status

    def verdict(self, container_id: str) -> tuple[str, float] | None:
        return self.status, 0.0


def running(manager: FakeManager) -> str:
    cid = manager.create("img:1", ContainerConfig(), "app").id
    manager.start(cid)
    return cid


def gate(manager: FakeManager, health: FakeHealth | None = None) -> ManagerContainers:
    settings = UpdateAgentSettings(activation_monitor=0, activation_timeout=0)
    return ManagerContainers(manager, settings, 1, health)


def test_running_without_a_check_passes() -> None:
    manager = FakeManager()
    gate(manager).verify_activation(running(manager))


def test_exited_fails_with_its_exit_code() -> None:
    manager = FakeManager()
    cid = running(manager)
    view = manager.get(cid)
    manager.views[cid] = replace(view, state=replace(view.state, status=Status.EXITED, exit_code=3))
    with pytest.raises(OcirtError) as info:
        gate(manager).verify_activation(cid)
    assert info.value.message == "container app is exited with exit code 3 instead of running"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("healthy", None),
        ("unhealthy", "container app is unhealthy"),
        ("starting", "container app did not turn healthy in time (starting)"),
    ],
)
def test_health_decides_when_the_image_has_a_check(status: str, error: str | None) -> None:
    manager = FakeManager()
    cid = running(manager)
    if error is None:
        gate(manager, FakeHealth(status)).verify_activation(cid)
        return
    with pytest.raises(OcirtError) as info:
        gate(manager, FakeHealth(status)).verify_activation(cid)
    assert info.value.message == error
