"""Raw cgroup figures -> Kanto's measurements and `ocirt stats` rows. Pure.

Kanto's formulas (docs/kanto-features-notes.md §2.1, util/util_metrics.go), at full precision:

    cpu.utilization    = Δ container CPU ns / Δ machine CPU ns · 100, clamped 0..100:
                         a share of the whole machine (all CPUs), only with a previous sample
    memory.total       = min(cgroup limit, host MemTotal)
    memory.used        = usage - inactive file pages
    memory.utilization = used / total · 100, clamped 0..100
    io.*Bytes          = sum over devices of the cgroup's read/written bytes
    net.*Bytes         = sum of rx/tx bytes of the container's own interfaces
    pids               = pids.current, left out when 0

Every value is a float (Kanto sends JSON floats). The `stats` row follows `docker stats`
instead: CPU % counts one core as 100 %, so a busy loop on a 2-core machine shows 100 %
there and cpu.utilization 50.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ocirt.metrics.request import (
    CPU_UTILIZATION,
    IO_READ,
    IO_WRITE,
    MEMORY_TOTAL,
    MEMORY_USED,
    MEMORY_UTILIZATION,
    NET_READ,
    NET_WRITE,
    PIDS,
)


@dataclass(frozen=True, slots=True)
class CpuPoint:
    """The container's and the machine's CPU time at one moment, in nanoseconds."""

    container_ns: int
    system_ns: int


@dataclass(frozen=True, slots=True)
class Memory:
    usage: int
    inactive_file: int
    limit: int | None  # None: no limit in the cgroup


@dataclass(frozen=True, slots=True)
class Counters:
    read: int
    written: int


@dataclass(frozen=True, slots=True)
class Sample:
    """What the reader found for one container; None where it read nothing (not asked
    for, not available, or net in the host's network namespace)."""

    cpu_ns: int | None = None
    memory: Memory | None = None
    io: Counters | None = None
    net: Counters | None = None
    pids: int | None = None


def _clamp(percent: float) -> float:
    return min(100.0, max(0.0, percent))


def cpu_percent(previous: CpuPoint, current: CpuPoint) -> float | None:
    """Kanto's cpu.utilization; None when the machine's CPU time did not move."""
    system = current.system_ns - previous.system_ns
    if system <= 0:
        return None
    return _clamp((current.container_ns - previous.container_ns) / system * 100.0)


def memory_total(memory: Memory, host_total: int) -> int:
    if memory.limit is None or memory.limit <= 0:
        return host_total
    return min(memory.limit, host_total)


def memory_used(memory: Memory) -> int:
    return max(0, memory.usage - memory.inactive_file)


def memory_percent(memory: Memory, host_total: int) -> float:
    total = memory_total(memory, host_total)
    return _clamp(memory_used(memory) / total * 100.0) if total > 0 else 0.0


def measurements(
    sample: Sample,
    wanted: Collection[str],
    host_memory: int,
    previous: CpuPoint | None = None,
    current: CpuPoint | None = None,
) -> list[tuple[str, float]]:
    """(id, value) pairs in Kanto's order, limited to `wanted` and to what was read."""
    out: list[tuple[str, float]] = []
    if CPU_UTILIZATION in wanted and previous is not None and current is not None:
        percent = cpu_percent(previous, current)
        if percent is not None:
            out.append((CPU_UTILIZATION, percent))
    memory = sample.memory
    if memory is not None:
        if MEMORY_TOTAL in wanted:
            out.append((MEMORY_TOTAL, float(memory_total(memory, host_memory))))
        if MEMORY_USED in wanted:
            out.append((MEMORY_USED, float(memory_used(memory))))
        if MEMORY_UTILIZATION in wanted:
            out.append((MEMORY_UTILIZATION, memory_percent(memory, host_memory)))
    if sample.io is not None:
        if IO_READ in wanted:
            out.append((IO_READ, float(sample.io.read)))
        if IO_WRITE in wanted:
            out.append((IO_WRITE, float(sample.io.written)))
    if sample.net is not None:
        if NET_READ in wanted:
            out.append((NET_READ, float(sample.net.read)))
        if NET_WRITE in wanted:
            out.append((NET_WRITE, float(sample.net.written)))
    if PIDS in wanted and sample.pids:
        out.append((PIDS, float(sample.pids)))
    return out


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One line of `ocirt stats` (docker stats' columns)."""

    id: str
    name: str
    cpu_percent: float | None
    memory_used: int | None
    memory_limit: int | None
    memory_percent: float | None
    net: Counters | None
    io: Counters | None
    pids: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "cpuPercent": self.cpu_percent,
            "memoryUsage": self.memory_used,
            "memoryLimit": self.memory_limit,
            "memoryPercent": self.memory_percent,
            "netInput": self.net.read if self.net else None,
            "netOutput": self.net.written if self.net else None,
            "blockRead": self.io.read if self.io else None,
            "blockWrite": self.io.written if self.io else None,
            "pids": self.pids,
        }


def stats_row(
    container_id: str,
    name: str,
    sample: Sample,
    host_memory: int,
    cpus: int,
    previous: CpuPoint | None,
    current: CpuPoint | None,
) -> StatsRow:
    cpu = None
    if previous is not None and current is not None:
        system = current.system_ns - previous.system_ns
        if system > 0:
            used = current.container_ns - previous.container_ns
            cpu = max(0.0, used / system * cpus * 100.0)
    memory = sample.memory
    return StatsRow(
        id=container_id,
        name=name,
        cpu_percent=cpu,
        memory_used=memory_used(memory) if memory else None,
        memory_limit=memory_total(memory, host_memory) if memory else None,
        memory_percent=memory_percent(memory, host_memory) if memory else None,
        net=sample.net,
        io=sample.io,
        pids=sample.pids,
    )
