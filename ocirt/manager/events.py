"""Event delivery to subscribers: one queue, one dispatcher thread. Does no I/O.

Callbacks never run under the manager's locks, and all events are delivered in the
order they were published, so each container's events arrive in Kanto's order
(docs/kanto-compatibility.md §2). A callback that raises is logged and does not stop delivery.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from ocirt.manager.types import Event

Subscriber = Callable[[Event], None]

_log = logging.getLogger(__name__)


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[int, Subscriber] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ocirt-events", daemon=True)
        self._thread.start()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add a subscriber; the returned function removes it."""
        with self._lock:
            key = self._next
            self._next += 1
            self._subscribers[key] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    def publish(self, event: Event) -> None:
        self._queue.put(event)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the dispatcher."""
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            with self._lock:
                subscribers = list(self._subscribers.values())
            for callback in subscribers:
                try:
                    callback(event)
                except Exception:
                    _log.exception("event subscriber failed on %s", event.kind.value)
