"""The event bus: order, isolation of failing subscribers, unsubscribe, close."""

from __future__ import annotations

import threading

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.manager.events import EventBus
from ocirt.manager.types import ContainerView, Event, EventKind


def _event(kind: EventKind, n: int) -> Event:
    view = ContainerView(ContainerId(f"c{n}"), f"n{n}", "img", ContainerConfig(), "")
    return Event(kind, view)


def test_events_arrive_in_order_on_another_thread() -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    threads: set[str] = set()

    def record(event: Event) -> None:
        seen.append((event.kind.value, event.container.id))
        threads.add(threading.current_thread().name)

    bus.subscribe(record)
    kinds = [EventKind.CREATED, EventKind.STATE, EventKind.RENAMED, EventKind.REMOVED]
    for n in range(50):
        for kind in kinds:
            bus.publish(_event(kind, n))
    bus.close()
    assert seen == [(k.value, f"c{n}") for n in range(50) for k in kinds]
    assert threads == {"ocirt-events"}


def test_a_failing_subscriber_does_not_stop_delivery() -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append(e.container.id))
    bus.publish(_event(EventKind.STATE, 1))
    bus.publish(_event(EventKind.STATE, 2))
    bus.close()
    assert seen == ["c1", "c2"]


def test_unsubscribe() -> None:
    bus = EventBus()
    first: list[str] = []
    second: list[str] = []
    stop_first = bus.subscribe(lambda e: first.append(e.container.id))
    bus.subscribe(lambda e: second.append(e.container.id))
    bus.publish(_event(EventKind.STATE, 1))
    done = threading.Event()
    bus.subscribe(lambda e: done.set() if e.container.id == "c1" else None)
    bus.publish(_event(EventKind.STATE, 1))
    assert done.wait(5)
    stop_first()
    stop_first()
    bus.publish(_event(EventKind.STATE, 2))
    bus.close()
    assert first == ["c1", "c1"]
    assert second == ["c1", "c1", "c2"]
