"""The daemon's metrics service: the views a tick reads, the interval `stats` may ask."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest

from ocirt.config.state import Status
from ocirt.errors import InvalidArgument
from ocirt.manager.types import ContainerView, Event, EventKind
from ocirt.metrics.service import RESYNC, LiveViews, MetricsService
from tests.unit.metrics.fakes import view


class Manager:
    def __init__(self, views: list[ContainerView]) -> None:
        self.views = views
        self.lists = 0
        self.callbacks: list[Callable[[Event], None]] = []

    def list(self) -> Sequence[ContainerView]:
        self.lists += 1
        return list(self.views)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: None

    def emit(self, kind: EventKind, v: ContainerView) -> None:
        for callback in self.callbacks:
            callback(Event(kind, v))


def test_live_views_follow_events_and_resync() -> None:
    now = [0.0]
    a = view("a")
    manager = Manager([a])
    live = LiveViews(manager, clock=lambda: now[0])
    assert live() == [a] and manager.lists == 1
    b = replace(view("b"), created_at="2")
    manager.emit(EventKind.CREATED, b)
    stopped = replace(a, state=replace(a.state, status=Status.STOPPED, pid=-1))
    manager.emit(EventKind.STATE, stopped)
    assert live() == [stopped, b]
    manager.emit(EventKind.REMOVED, b)
    assert live() == [stopped]
    assert manager.lists == 1  # events only, no manager walk per tick
    # A container that reports RUNNING is handed on before the views show it.
    primed: list[tuple[str, list[ContainerView]]] = []
    live.on_running = lambda v: primed.append((v.id, list(live._views.values())))
    running = replace(stopped, state=replace(stopped.state, status=Status.RUNNING, pid=7))
    manager.emit(EventKind.STATE, running)
    manager.emit(EventKind.STATE, stopped)
    assert primed == [("a", [stopped])]
    # A change the events missed is picked up by the next full list.
    manager.views = [a]
    now[0] = RESYNC
    assert live() == [a] and manager.lists == 2


@pytest.mark.parametrize("interval", [-1, 11, "1", True, float("nan"), None])
def test_bad_intervals_are_refused_before_anything_is_read(interval: object) -> None:
    service = MetricsService(Manager([]))
    with pytest.raises(InvalidArgument, match="interval"):
        service.stats(None, interval)
    assert service._collector is None
