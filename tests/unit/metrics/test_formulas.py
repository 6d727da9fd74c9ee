"""Kanto's formulas at full precision, and docker-stats rows."""

from __future__ import annotations

import pytest

from ocirt.metrics.formulas import (
    Counters,
    CpuPoint,
    Memory,
    Sample,
    cpu_percent,
    measurements,
    memory_percent,
    memory_total,
    memory_used,
    stats_row,
)
from ocirt.metrics.request import MEASUREMENT_IDS

GIB = 1024**3


def test_cpu_is_a_share_of_the_whole_machine_at_full_precision() -> None:
    # 0.3 s of container CPU while the machine's CPUs together ran 2 s: 15 %. Kanto, which
    # truncates the machine's time to whole seconds, would divide by 2 s or 1 s.
    previous = CpuPoint(container_ns=1_000_000_000, system_ns=10_000_000_000)
    current = CpuPoint(container_ns=1_300_000_000, system_ns=12_000_000_000)
    assert cpu_percent(previous, current) == pytest.approx(15.0)
    assert cpu_percent(previous, CpuPoint(1_000_000_007, 10_000_000_100)) == pytest.approx(7.0)


def test_cpu_is_clamped_and_needs_the_machine_to_move() -> None:
    assert cpu_percent(CpuPoint(0, 100), CpuPoint(500, 200)) == 100.0
    assert cpu_percent(CpuPoint(500, 100), CpuPoint(0, 200)) == 0.0
    assert cpu_percent(CpuPoint(0, 100), CpuPoint(50, 100)) is None


def test_memory() -> None:
    limited = Memory(usage=48 * 1024**2, inactive_file=16 * 1024**2, limit=64 * 1024**2)
    assert memory_total(limited, 8 * GIB) == 64 * 1024**2
    assert memory_used(limited) == 32 * 1024**2
    assert memory_percent(limited, 8 * GIB) == 50.0
    unlimited = Memory(usage=GIB, inactive_file=0, limit=None)
    assert memory_total(unlimited, 8 * GIB) == 8 * GIB
    # v1's "no limit" is a huge number: the host's memory is the total.
    huge = Memory(usage=GIB, inactive_file=0, limit=9223372036854771712)
    assert memory_total(huge, 8 * GIB) == 8 * GIB
    assert memory_percent(huge, 8 * GIB) == 12.5
    # Inactive file pages above the usage (a race between two files): not negative.
    assert memory_used(Memory(usage=10, inactive_file=20, limit=None)) == 0
    assert memory_percent(Memory(usage=10, inactive_file=0, limit=None), 0) == 0.0


FULL = Sample(
    cpu_ns=2_000,
    memory=Memory(usage=300, inactive_file=100, limit=1000),
    io=Counters(read=7, written=9),
    net=Counters(read=11, written=13),
    pids=3,
)


def test_every_measurement_in_kantos_order_as_floats() -> None:
    got = measurements(FULL, MEASUREMENT_IDS, 4000, CpuPoint(1000, 0), CpuPoint(2000, 4000))
    assert got == [
        ("cpu.utilization", 25.0),
        ("memory.total", 1000.0),
        ("memory.used", 200.0),
        ("memory.utilization", 20.0),
        ("io.readBytes", 7.0),
        ("io.writeBytes", 9.0),
        ("net.readBytes", 11.0),
        ("net.writeBytes", 13.0),
        ("pids", 3.0),
    ]
    assert all(type(value) is float for _, value in got)


def test_only_what_is_wanted_and_was_read() -> None:
    assert measurements(FULL, {"pids", "io.writeBytes"}, 4000) == [
        ("io.writeBytes", 9.0),
        ("pids", 3.0),
    ]
    # No previous CPU point: no cpu.utilization (Kanto's first tick).
    assert measurements(FULL, {"cpu.utilization"}, 4000, None, CpuPoint(1, 1)) == []
    # Host network mode: net was not read.
    assert measurements(Sample(net=None, pids=1), MEASUREMENT_IDS, 4000) == [("pids", 1.0)]
    # pids.current 0 is left out, as Kanto does.
    assert measurements(Sample(pids=0), MEASUREMENT_IDS, 4000) == []


def test_stats_row_counts_one_core_as_100() -> None:
    row = stats_row("id", "n", FULL, 4000, 2, CpuPoint(1000, 0), CpuPoint(2000, 4000))
    assert row.cpu_percent == 50.0
    assert row.to_json() == {
        "id": "id",
        "name": "n",
        "cpuPercent": 50.0,
        "memoryUsage": 200,
        "memoryLimit": 1000,
        "memoryPercent": 20.0,
        "netInput": 11,
        "netOutput": 13,
        "blockRead": 7,
        "blockWrite": 9,
        "pids": 3,
    }
    empty = stats_row("id", "n", Sample(), 4000, 2, None, None).to_json()
    assert empty["cpuPercent"] is None and empty["memoryUsage"] is None and empty["pids"] is None
