"""Lanes: a hanging slow task never holds up control work; same-key order; bounded."""

from __future__ import annotations

import threading

import pytest

from ocirt.errors import Overloaded
from ocirt.lanes import Lane, Lanes


def test_control_runs_while_every_slow_worker_hangs() -> None:
    lanes = Lanes(slow_workers=2, control_workers=1, capacity=4)
    release = threading.Event()
    hung = [lanes.submit(Lane.SLOW, None, release.wait) for _ in range(4)]
    try:
        done = lanes.submit(Lane.CONTROL, "Container:a", lambda: "stopped")
        assert done.future.result(timeout=30) == "stopped"
    finally:
        release.set()
    assert all(t.future.result(timeout=30) for t in hung)
    lanes.close(5)


def test_a_full_lane_refuses_at_once() -> None:
    lanes = Lanes(slow_workers=1, control_workers=1, capacity=2)
    release = threading.Event()
    started = threading.Event()

    def hang() -> None:
        started.set()
        release.wait()

    lanes.submit(Lane.SLOW, None, hang)
    assert started.wait(30)
    lanes.submit(Lane.SLOW, None, hang)
    lanes.submit(Lane.SLOW, None, hang)
    with pytest.raises(Overloaded) as refused:
        lanes.submit(Lane.SLOW, None, hang)
    assert refused.value.status == 503
    # The other lane still has room.
    assert lanes.submit(Lane.CONTROL, "k", lambda: 1).future.result(timeout=30) == 1
    release.set()
    lanes.close(5)


def test_same_key_runs_in_order_and_other_keys_alongside() -> None:
    lanes = Lanes(slow_workers=1, control_workers=2, capacity=10)
    order: list[str] = []
    gate = threading.Event()
    first = lanes.submit(Lane.CONTROL, "a", lambda: (gate.wait(30), order.append("a1")))
    second = lanes.submit(Lane.CONTROL, "a", lambda: order.append("a2"))
    other = lanes.submit(Lane.CONTROL, "b", lambda: order.append("b"))
    other.future.result(timeout=30)  # "b" ran while "a1" was held
    assert order == ["b"]
    gate.set()
    first.future.result(timeout=30)
    second.future.result(timeout=30)
    assert order == ["b", "a1", "a2"]
    lanes.close(5)


def test_close_hands_back_what_never_started() -> None:
    lanes = Lanes(slow_workers=1, control_workers=1, capacity=5)
    release = threading.Event()
    started = threading.Event()
    lanes.submit(Lane.CONTROL, "a", lambda: (started.set(), release.wait(30)))
    assert started.wait(30)
    queued = [lanes.submit(Lane.CONTROL, "a", lambda: None) for _ in range(3)]
    left = lanes.close(0)
    release.set()
    assert [id(t) for t in left] == [id(t) for t in queued]
    assert all(t.future.cancelled() for t in left)
    with pytest.raises(Overloaded):
        lanes.submit(Lane.CONTROL, "b", lambda: None)
