"""What the daemon holds of metrics: a collector built on first use. I/O via the reader.

A daemon whose Metrics feature is off and that is never asked for `ocirt stats` never
imports the cgroup reader nor reads a cgroup file.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Protocol

from ocirt.errors import InvalidArgument, Unavailable
from ocirt.manager.types import ContainerView, Event, EventKind, Status

if TYPE_CHECKING:
    from ocirt.metrics.collector import Collector

# `ocirt stats` waits this long between its two samples at most.
MAX_INTERVAL = 10.0
# LiveViews asks the manager for the whole list again after this many seconds.
RESYNC = 30.0


class Containers(Protocol):
    """What metrics need of the manager (`ocirt.manager.Manager` has it)."""

    def list(self) -> Sequence[ContainerView]: ...

    def subscribe(self, callback: Callable[[Event], None], /) -> Callable[[], None]: ...


class LiveViews:
    """The manager's containers, kept current from its events.

    `Manager.list()` looks at every running container's monitor and exit record; a
    1 s tick over 20 containers should not. Events carry every state change; a full
    list every RESYNC seconds bounds what a lost one could leave stale.
    """

    def __init__(self, manager: Containers, clock: Callable[[], float] = time.monotonic) -> None:
        self._manager = manager
        self._clock = clock
        self._lock = threading.Lock()
        self._views: dict[str, ContainerView] = {}
        self._synced = -RESYNC
        # Called with each container that reports RUNNING, before the views show it.
        self.on_running: Callable[[ContainerView], None] | None = None
        manager.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        view = event.container
        running = event.kind is EventKind.STATE and view.state.status is Status.RUNNING
        if running and self.on_running is not None:
            self.on_running(view)
        with self._lock:
            if event.kind is EventKind.REMOVED:
                self._views.pop(event.container.id, None)
            else:
                self._views[event.container.id] = event.container

    def __call__(self) -> Sequence[ContainerView]:
        now = self._clock()
        if now - self._synced >= RESYNC:
            views = self._manager.list()
            with self._lock:
                self._views = {v.id: v for v in views}
                self._synced = now
        with self._lock:
            return sorted(self._views.values(), key=lambda v: v.created_at)


class MetricsService:
    def __init__(self, manager: Containers) -> None:
        self._manager = manager
        self._lock = threading.Lock()
        self._collector: Collector | None = None

    def collector(self) -> Collector:
        """The collector over the host's cgroupfs; Unavailable when there is none."""
        with self._lock:
            if self._collector is None:
                from ocirt.metrics.cgroups import CgroupReader
                from ocirt.metrics.collector import Collector

                try:
                    reader = CgroupReader()
                except (OSError, ValueError) as exc:
                    raise Unavailable(f"cannot read container metrics: {exc}") from exc
                views = LiveViews(self._manager)
                self._collector = Collector(reader, views)
                views.on_running = self._collector.prime
            return self._collector

    def stats(self, ids: Collection[str] | None, interval: object = 1.0) -> list[dict[str, object]]:
        """`ocirt stats` rows as JSON: CPU % over `interval` seconds."""
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise InvalidArgument("interval must be a number of seconds")
        if not math.isfinite(interval) or not 0 <= interval <= MAX_INTERVAL:
            raise InvalidArgument(f"interval must be between 0 and {MAX_INTERVAL:g} seconds")
        rows = self.collector().stats(ids, float(interval))
        return [row.to_json() for row in rows]
