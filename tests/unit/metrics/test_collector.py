"""The collector over a scripted source: baselines, selection, snapshot shape, stats."""

from __future__ import annotations

from ocirt.config.state import Status
from ocirt.manager.types import ContainerView
from ocirt.metrics.cgroups import Group
from ocirt.metrics.collector import Collector
from ocirt.metrics.request import Filter, MetricsRequest
from tests.unit.metrics.fakes import FakeSource, view

EVERYTHING = MetricsRequest(1.0)


def collector(source: FakeSource, views: list[ContainerView]) -> Collector:
    return Collector(source, lambda: views)


def test_first_snapshot_has_cpu_from_the_request_baseline() -> None:
    # Each read of the machine moves it by 1 s; the container uses 0.25 s between reads.
    source = FakeSource(cpu={100: 0}, step={100: 250_000_000})
    c = collector(source, [view("a")])
    c.reset(EVERYTHING)
    snapshot = c.snapshot(EVERYTHING)
    assert snapshot == [
        {
            "originator": "Container:a",
            "measurements": [
                {"id": "cpu.utilization", "value": 25.0},
                {"id": "memory.total", "value": 1000.0},
                {"id": "memory.used", "value": 200.0},
                {"id": "memory.utilization", "value": 20.0},
                {"id": "io.readBytes", "value": 1.0},
                {"id": "io.writeBytes", "value": 2.0},
                {"id": "net.readBytes", "value": 3.0},
                {"id": "net.writeBytes", "value": 4.0},
                {"id": "pids", "value": 2.0},
            ],
        }
    ]


def test_without_a_baseline_cpu_waits_for_the_second_tick() -> None:
    source = FakeSource(cpu={100: 0}, step={100: 500_000_000})
    c = collector(source, [view("a")])
    cpu_only = MetricsRequest(1.0, (Filter(("cpu",)),))
    assert c.snapshot(cpu_only) == []  # nothing else asked for, so no entry at all
    assert c.snapshot(cpu_only) == [
        {"originator": "Container:a", "measurements": [{"id": "cpu.utilization", "value": 50.0}]}
    ]


def test_a_new_request_resets_the_baselines() -> None:
    source = FakeSource(cpu={100: 0}, step={100: 100_000_000})
    c = collector(source, [view("a")])
    c.snapshot(EVERYTHING)
    source.step[100] = 900_000_000
    c.reset(EVERYTHING)  # the baseline is taken now, so the old usage does not count
    values = c.snapshot(EVERYTHING)[0]["measurements"]
    assert isinstance(values, list)
    assert values[0] == {"id": "cpu.utilization", "value": 90.0}
    # A stopping request drops the baselines and reads nothing.
    source.reads.clear()
    c.reset(MetricsRequest(None))
    assert source.reads == []


def test_only_running_and_paused_and_covered_containers() -> None:
    source = FakeSource(cpu={1: 0, 2: 0, 3: 0, 4: 0})
    views = [
        view("run", Status.RUNNING, 1),
        view("paused", Status.PAUSED, 2),
        view("stopped", Status.STOPPED, 3),
        view("exited", Status.EXITED, 4),
        view("created", Status.CREATED, -1),
    ]
    c = collector(source, views)
    assert [s["originator"] for s in c.snapshot(EVERYTHING)] == [
        "Container:run",
        "Container:paused",
    ]
    only = MetricsRequest(1.0, (Filter(("pids",), "Container:paused"),))
    source.reads.clear()
    assert c.snapshot(only) == [
        {"originator": "Container:paused", "measurements": [{"id": "pids", "value": 2.0}]}
    ]
    # Only the covered container was read, and only its pids.
    assert source.reads == [(2, frozenset({Group.PIDS}))]


def test_a_restarted_container_starts_a_new_baseline() -> None:
    source = FakeSource(cpu={100: 0, 200: 5_000_000_000})
    views = [view("a", pid=100)]
    c = collector(source, views)
    cpu_only = MetricsRequest(1.0, (Filter(("cpu",)),))
    c.snapshot(cpu_only)
    views[0] = view("a", pid=200)
    assert c.snapshot(cpu_only) == []  # not 500 % from the other process's counter


def test_a_vanished_container_is_skipped() -> None:
    source = FakeSource(cpu={})
    assert collector(source, [view("a")]).snapshot(EVERYTHING) == []


def test_stats_samples_twice_interval_apart() -> None:
    source = FakeSource(cpu={1: 0, 2: 0}, step={1: 1_000_000_000})
    views = [view("a", pid=1), view("b", Status.STOPPED, 2), view("c", pid=2)]
    slept: list[float] = []
    c = collector(source, views)
    rows = c.stats(None, 1.0, slept.append)
    assert slept == [1.0]
    assert [r.id for r in rows] == ["a", "c"]
    # The container used all the machine's CPU time (1 s of 1 s over both CPUs): docker
    # counts each core as 100 %, so 200 %.
    assert rows[0].cpu_percent == 200.0
    assert rows[1].cpu_percent == 0.0
    # Named containers, in the order asked, stopped ones included with no figures.
    rows = c.stats(["b", "a"], 0.5, slept.append)
    assert [r.id for r in rows] == ["b", "a"]
    assert rows[0].to_json()["cpuPercent"] is None and rows[0].to_json()["pids"] is None


def test_a_container_reporting_running_is_primed_while_a_request_covers_its_cpu() -> None:
    source = FakeSource(cpu={100: 0, 200: 0}, step={100: 300_000_000, 200: 300_000_000})
    views: list[ContainerView] = []
    c = collector(source, views)
    cpu_of_a = MetricsRequest(1.0, (Filter(("cpu",), "Container:a"),))
    c.reset(cpu_of_a)
    views.extend([view("a", pid=100), view("b", pid=200)])
    source.reads.clear()
    c.prime(views[0])
    c.prime(views[1])  # not covered: not read
    assert source.reads == [(100, frozenset({Group.CPU}))]
    # The first tick after the start already has cpu.utilization.
    assert c.snapshot(cpu_of_a) == [
        {"originator": "Container:a", "measurements": [{"id": "cpu.utilization", "value": 30.0}]}
    ]
    # Without a running request nothing is primed.
    c.reset(MetricsRequest(None))
    source.reads.clear()
    c.prime(views[0])
    assert source.reads == []
