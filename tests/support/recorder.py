"""Collects a manager's events (delivered on its dispatcher thread) for assertions."""

from __future__ import annotations

import threading
import time

from ocirt.manager.types import Event


class Recorder:
    """Collects events from the dispatcher thread."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, container_id: str) -> list[tuple[str, str]]:
        with self._cond:
            return [
                (e.kind.value, e.container.state.status.name)
                for e in self.events
                if e.container.id == container_id
            ]

    def wait(self, container_id: str, count: int, timeout: float = 30.0) -> list[tuple[str, str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([e for e in self.events if e.container.id == container_id]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} events, got {self.of(container_id)}")
                self._cond.wait(left)
        return self.of(container_id)
