"""Lanes of work for the daemon's front ends: bounded queues, per-key order. No I/O.

A create may pull an image for minutes; a stop must not wait behind it. So commands run
in lanes, each with its own workers and its own bounded queue: `SLOW` for what may pull or
download (creates, software updates), `CONTROL` for everything else. Within a lane, tasks
with the same key (a container's feature id) run one at a time in the order they came, so
a `stop` never overtakes the `start` sent before it; different keys run side by side.

A task that finds its lane's queue full is refused at once with `Overloaded` (503): a
client is answered, never left waiting on a queue with no bound. `close()` hands back the
tasks that never started, so the caller answers them too.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ocirt.errors import Overloaded

log = logging.getLogger(__name__)


class Lane(Enum):
    SLOW = "slow"
    CONTROL = "control"


@dataclass(eq=False)
class Task:
    """One unit of work; `future` holds its result (or exception)."""

    run: Callable[[], Any]
    key: object
    future: Future[Any] = field(default_factory=Future)


class _Lane:
    def __init__(self, name: str, workers: int, capacity: int) -> None:
        self.name = name
        self.workers = workers
        self.capacity = capacity
        self.waiting: dict[object, deque[Task]] = {}
        self.ready: deque[object] = deque()  # keys with waiting work, none running
        self.running: set[object] = set()
        self.queued = 0
        self.threads: list[threading.Thread] = []


class Lanes:
    """Bounded, keyed worker lanes. `submit`, then `close()`."""

    def __init__(self, slow_workers: int, control_workers: int, capacity: int) -> None:
        self._cond = threading.Condition()
        self._closed = False
        self._lanes = {
            Lane.SLOW: _Lane("ocirt-slow", max(1, slow_workers), max(1, capacity)),
            Lane.CONTROL: _Lane("ocirt-control", max(1, control_workers), max(1, capacity)),
        }

    def submit(self, lane: Lane, key: object, run: Callable[[], Any]) -> Task:
        """Queue `run` behind earlier tasks of `key` (None: a key of its own). Raises
        Overloaded when the lane's queue is full or the lanes are closed."""
        task = Task(run, key if key is not None else object())
        with self._cond:
            if self._closed:
                raise Overloaded("the daemon is stopping; try again once it is back")
            state = self._lanes[lane]
            if state.queued >= state.capacity:
                raise Overloaded(
                    f"too many requests are waiting ({state.queued} in the {lane.value} "
                    "lane); try again later"
                )
            queue = state.waiting.get(task.key)
            if queue is None:
                state.waiting[task.key] = queue = deque()
                if task.key not in state.running:
                    state.ready.append(task.key)
            queue.append(task)
            state.queued += 1
            self._start_worker(state)
            self._cond.notify_all()
        return task

    def _start_worker(self, state: _Lane) -> None:
        # Workers start on demand, so an idle daemon holds no threads for them.
        alive = [t for t in state.threads if t.is_alive()]
        state.threads = alive
        idle = len(alive) - len(state.running)
        if len(alive) < state.workers and idle < len(state.ready):
            thread = threading.Thread(
                target=self._work, args=(state,), name=state.name, daemon=True
            )
            state.threads.append(thread)
            thread.start()

    def _work(self, state: _Lane) -> None:
        while True:
            with self._cond:
                while not state.ready:
                    if self._closed:
                        return
                    self._cond.wait()
                key = state.ready.popleft()
                queue = state.waiting[key]
                task = queue.popleft()
                if not queue:
                    del state.waiting[key]
                state.queued -= 1
                state.running.add(key)
            if task.future.set_running_or_notify_cancel():
                try:
                    task.future.set_result(task.run())
                except BaseException as exc:
                    task.future.set_exception(exc)
            with self._cond:
                state.running.discard(key)
                if key in state.waiting:
                    state.ready.append(key)
                    self._cond.notify_all()
                self._cond.notify_all()

    def close(self, wait: float) -> list[Task]:
        """Refuse new work, take back the tasks that never started, and wait up to `wait`
        seconds for the running ones. Returns the tasks taken back (not run)."""
        with self._cond:
            self._closed = True
            left: list[Task] = []
            for state in self._lanes.values():
                for queue in state.waiting.values():
                    left.extend(queue)
                state.waiting.clear()
                state.ready.clear()
                state.queued = 0
            self._cond.notify_all()
            threads = [t for s in self._lanes.values() for t in s.threads]
        for task in left:
            task.future.cancel()
        _join_all(threads, wait)
        return left


def _join_all(threads: list[threading.Thread], wait: float) -> None:
    import time

    deadline = time.monotonic() + wait
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            log.warning("%s still busy at shutdown; not waiting for it", thread.name)
