"""What the daemon holds of metrics: a collector built on first use. I/O via the reader.

A daemon whose Metrics feature is off and that is never asked for `ocirt stats` never
imports the cgroup reader nor reads a cgroup file.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection
from typing import TYPE_CHECKING

from ocirt.errors import InvalidArgument, Unavailable

if TYPE_CHECKING:
    from ocirt.metrics.collector import Collector, Containers

# `ocirt stats` waits this long between its two samples at most.
MAX_INTERVAL = 10.0


class MetricsService:
    def __init__(self, containers: Containers) -> None:
        self._containers = containers
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
                self._collector = Collector(reader, self._containers)
            return self._collector

    def stats(self, ids: Collection[str] | None, interval: object = 1.0) -> list[dict[str, object]]:
        """`ocirt stats` rows as JSON: CPU % over `interval` seconds."""
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise InvalidArgument("interval must be a number of seconds")
        if not math.isfinite(interval) or not 0 <= interval <= MAX_INTERVAL:
            raise InvalidArgument(f"interval must be between 0 and {MAX_INTERVAL:g} seconds")
        rows = self.collector().stats(ids, float(interval))
        return [row.to_json() for row in rows]
