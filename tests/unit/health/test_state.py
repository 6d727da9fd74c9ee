from __future__ import annotations

from ocirt.health.healthcheck import Healthcheck
from ocirt.health.state import HEALTHY, STARTING, UNHEALTHY, Health, Probe, record

CHECK = Healthcheck(("true",), retries=2)


def probe(code: int, output: str = "") -> Probe:
    return Probe("s", "e", code, output)


def test_success_is_healthy_and_resets_the_streak() -> None:
    health = record(Health(), CHECK, probe(1), in_start_period=False)
    assert (health.status, health.failing_streak) == (STARTING, 1)
    health = record(health, CHECK, probe(0), in_start_period=False)
    assert (health.status, health.failing_streak) == (HEALTHY, 0)


def test_retries_failures_make_unhealthy() -> None:
    health = Health(HEALTHY)
    health = record(health, CHECK, probe(1), in_start_period=False)
    assert health.status == HEALTHY
    health = record(health, CHECK, probe(-1), in_start_period=False)
    assert (health.status, health.failing_streak) == (UNHEALTHY, 2)


def test_failures_in_the_start_period_do_not_count() -> None:
    health = Health()
    for _ in range(5):
        health = record(health, CHECK, probe(1), in_start_period=True)
    assert (health.status, health.failing_streak) == (STARTING, 0)
    assert record(health, CHECK, probe(0), in_start_period=True).status == HEALTHY


def test_log_keeps_five_and_cuts_output() -> None:
    health = Health()
    for i in range(7):
        health = record(health, CHECK, probe(0, str(i) * 5000), in_start_period=False)
    assert [p.output[0] for p in health.log] == ["2", "3", "4", "5", "6"]
    assert all(len(p.output) == 4096 for p in health.log)
    assert health.to_json()["log"][0]["exitCode"] == 0  # type: ignore[index]
