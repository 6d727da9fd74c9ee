"""The activation gate shared by the update agent, deployment and SoftwareUpdatable."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.health.gate import ActivationFailed, ActivationGate, Interrupted
from ocirt.manager.types import Status
from tests.support.fake_manager import FakeManager


class Verdicts:
    """Health verdicts handed out in order; the last one repeats."""

    def __init__(self, *statuses: str) -> None:
        self.statuses = list(statuses)

    def verdict(
        self, container_id: str, started_at: str | None = None, /
    ) -> tuple[str, float] | None:
        return (self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]), 0.0


def running(manager: FakeManager) -> ContainerId:
    cid = manager.create("img:1", ContainerConfig(), "app").id
    manager.start(cid)
    return cid


def test_starting_then_healthy_passes() -> None:
    manager = FakeManager()
    cid = running(manager)
    ActivationGate(manager, Verdicts("starting", "starting", "healthy"), timeout=30).verify(cid)


def test_unhealthy_is_marked_as_such() -> None:
    manager = FakeManager()
    cid = running(manager)
    with pytest.raises(ActivationFailed) as info:
        ActivationGate(manager, Verdicts("starting", "unhealthy"), timeout=30).verify(cid)
    assert info.value.unhealthy
    assert info.value.message == "container app is unhealthy"


def test_a_restart_during_the_check_fails_it() -> None:
    manager = FakeManager()
    cid = running(manager)

    class Restarts:
        def verdict(
            self, container_id: str, started_at: str | None = None, /
        ) -> tuple[str, float] | None:
            view = manager.get(cid)
            manager.views[cid] = replace(view, state=replace(view.state, started_at="later"))
            return "starting", 0.0

    with pytest.raises(ActivationFailed) as info:
        ActivationGate(manager, Restarts(), timeout=30).verify(cid)
    assert not info.value.unhealthy
    assert info.value.message == "container app restarted during its activation check"


def test_a_run_restarted_for_being_unhealthy_fails_as_unhealthy() -> None:
    manager = FakeManager()
    cid = running(manager)
    first = manager.get(cid).state.started_at

    class RestartedUnhealthy:
        """The monitor saw the first run turn unhealthy and restarted the container."""

        def verdict(
            self, container_id: str, started_at: str | None = None, /
        ) -> tuple[str, float] | None:
            if started_at == first:
                return "unhealthy", 0.0
            view = manager.get(cid)
            manager.views[cid] = replace(view, state=replace(view.state, started_at="again"))
            return "starting", 0.0

    with pytest.raises(ActivationFailed) as info:
        ActivationGate(manager, RestartedUnhealthy(), timeout=30).verify(cid)
    assert info.value.unhealthy
    assert info.value.message == "container app is unhealthy"


def test_a_stopped_container_fails_without_health() -> None:
    manager = FakeManager()
    cid = manager.create("img:1", ContainerConfig(), "app").id
    with pytest.raises(ActivationFailed) as info:
        ActivationGate(manager, monitor=0).verify(cid)
    assert info.value.message == "container app is created instead of running"


def test_close_interrupts_a_check_under_way() -> None:
    manager = FakeManager()
    cid = running(manager)
    gate = ActivationGate(manager, Verdicts("starting"), timeout=600)
    failures: list[BaseException] = []

    def check() -> None:
        try:
            gate.verify(cid)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=check)
    thread.start()
    gate.close()
    thread.join(30)
    assert not thread.is_alive()
    assert [type(f) for f in failures] == [Interrupted]
    assert manager.get(cid).state.status is Status.RUNNING
