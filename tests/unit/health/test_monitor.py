"""The health monitor's verdicts per run, over the in-memory manager (no probe runs: the
interval is longer than the test)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ocirt.config.model import ContainerConfig
from ocirt.health.healthcheck import Healthcheck
from ocirt.health.monitor import HealthMonitor
from ocirt.health.state import Health
from tests.support.fake_manager import FakeManager

CHECK = Healthcheck(argv=("true",), interval=3600.0, timeout=1.0, start_period=2.0)


def test_the_verdict_of_a_replaced_run_is_kept_for_the_gate() -> None:
    manager = FakeManager()
    cid = manager.create("img:1", ContainerConfig(), "app").id
    manager.start(cid)
    monitor = HealthMonitor(manager, lambda ref: CHECK, Path("/nonexistent"))
    monitor.start()
    try:
        first = manager.get(cid)
        assert monitor.verdict(cid) == ("starting", 3601.0)
        # The first run turns unhealthy (as after its probes) and is restarted.
        monitor._runs[cid].health = Health("unhealthy", 3)
        assert monitor.verdict(cid) == ("unhealthy", 3601.0)
        again = replace(first, state=replace(first.state, started_at="2024-05-01T11:00:00Z"))
        manager._set(again)
        assert monitor.verdict(cid) == ("starting", 3601.0)
        assert monitor.verdict(cid, first.state.started_at) == ("unhealthy", 3601.0)
        manager.remove(cid, True)
        assert monitor.health(cid) is None
        assert cid not in monitor._ended
    finally:
        monitor.close()
