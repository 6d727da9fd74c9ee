"""Samples containers for a Metrics request or for `ocirt stats`. I/O only through its ports.

CPU utilisation is a difference between two samples, so the collector keeps, per
container, the last CPU point of its init process; a new request drops them (Kanto
resets the baselines) and takes fresh ones at once, so the first report after a request
already carries cpu.utilization. `stats` keeps no state: it samples twice, `interval`
apart. Thread-safe: the Metrics request arrives on a worker thread, ticks on another.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from ocirt.manager.types import ContainerView
from ocirt.metrics.cgroups import ALL_GROUPS, Group, SampleSource, groups_for
from ocirt.metrics.formulas import CpuPoint, Sample, StatsRow, measurements, stats_row
from ocirt.metrics.request import ORIGINATOR_PREFIX, MetricsRequest

Containers = Callable[[], Sequence[ContainerView]]


@dataclass(frozen=True, slots=True)
class _Baseline:
    pid: int
    point: CpuPoint


def _active(view: ContainerView) -> bool:
    # Only RUNNING and PAUSED containers have processes to measure (util_metrics.go).
    return view.state.status.is_active and view.state.pid > 0


class Collector:
    def __init__(self, source: SampleSource, containers: Containers) -> None:
        self._source = source
        self._containers = containers
        # Never held while calling `containers` (which may ask the manager, whose events
        # call `prime` with the manager's locks held).
        self._lock = threading.Lock()
        self._baselines: dict[str, _Baseline] = {}
        self._request: MetricsRequest | None = None

    def reset(self, request: MetricsRequest) -> None:
        """Forget every CPU baseline and take new ones for what `request` covers."""
        active = request.period is not None
        views = self._containers() if active else ()
        with self._lock:
            self._request = request if active else None
            self._baselines.clear()
            if not active:
                return
            system = self._source.system_cpu_ns()
            for view in views:
                self._take_baseline(view, request, system)

    def prime(self, view: ContainerView) -> None:
        """A container reports RUNNING: take its CPU baseline now when the running request
        covers its cpu.utilization (as Kanto does), so its first report carries it."""
        with self._lock:
            if self._request is not None:
                self._take_baseline(view, self._request, None)

    def _take_baseline(
        self, view: ContainerView, request: MetricsRequest, system: int | None
    ) -> None:
        if not _active(view) or "cpu.utilization" not in request.selected(view.id):
            return
        sample = self._source.sample(view.state.pid, (Group.CPU,))
        if sample is not None and sample.cpu_ns is not None:
            if system is None:
                system = self._source.system_cpu_ns()
            point = CpuPoint(sample.cpu_ns, system)
            self._baselines[view.id] = _Baseline(view.state.pid, point)

    def snapshot(self, request: MetricsRequest) -> list[dict[str, object]]:
        """Kanto's `snapshot`: one entry per measured container that has measurements."""
        views = self._containers()
        with self._lock:
            return self._snapshot(request, views)

    def _snapshot(
        self, request: MetricsRequest, all_views: Sequence[ContainerView]
    ) -> list[dict[str, object]]:
        snapshot: list[dict[str, object]] = []
        views = [v for v in all_views if _active(v) and request.covers(v.id)]
        seen = {v.id for v in views}
        for gone in [cid for cid in self._baselines if cid not in seen]:
            del self._baselines[gone]
        if not views:
            return snapshot
        system = self._source.system_cpu_ns()
        host_memory = self._source.host_memory()
        for view in views:
            wanted = request.selected(view.id)
            if not wanted:
                continue
            pid = view.state.pid
            sample = self._source.sample(pid, groups_for(wanted))
            if sample is None:
                continue
            previous, current = self._cpu(view.id, pid, sample, system)
            values = measurements(sample, wanted, host_memory, previous, current)
            if values:
                snapshot.append(
                    {
                        "originator": f"{ORIGINATOR_PREFIX}{view.id}",
                        "measurements": [{"id": i, "value": v} for i, v in values],
                    }
                )
        return snapshot

    def _cpu(
        self, cid: str, pid: int, sample: Sample, system: int
    ) -> tuple[CpuPoint | None, CpuPoint | None]:
        if sample.cpu_ns is None:
            return None, None
        current = CpuPoint(sample.cpu_ns, system)
        baseline = self._baselines.get(cid)
        self._baselines[cid] = _Baseline(pid, current)
        if baseline is None or baseline.pid != pid:
            return None, current  # a first sample, or the container restarted meanwhile
        return baseline.point, current

    def stats(
        self,
        ids: Collection[str] | None = None,
        interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> list[StatsRow]:
        """`ocirt stats`: one row per active container (or per id in `ids`), CPU % over
        `interval` seconds."""
        views = [v for v in self._containers() if (v.id in ids if ids is not None else _active(v))]
        if ids is not None:
            order = {cid: i for i, cid in enumerate(ids)}
            views.sort(key=lambda v: order[v.id])
        first = self._points(views)
        if first and interval > 0:
            sleep(interval)
        system = self._source.system_cpu_ns()
        host_memory = self._source.host_memory()
        cpus = self._source.cpu_count()
        rows = []
        for view in views:
            sample = self._source.sample(view.state.pid, ALL_GROUPS) if _active(view) else None
            if sample is None:
                sample = Sample()
            previous = first.get(view.id)
            current = CpuPoint(sample.cpu_ns, system) if sample.cpu_ns is not None else None
            rows.append(stats_row(view.id, view.name, sample, host_memory, cpus, previous, current))
        return rows

    def _points(self, views: Sequence[ContainerView]) -> dict[str, CpuPoint]:
        points: dict[str, CpuPoint] = {}
        active = [v for v in views if _active(v)]
        if not active:
            return points
        system = self._source.system_cpu_ns()
        for view in active:
            sample = self._source.sample(view.state.pid, (Group.CPU,))
            if sample is not None and sample.cpu_ns is not None:
                points[view.id] = CpuPoint(sample.cpu_ns, system)
        return points
