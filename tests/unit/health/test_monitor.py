"""HealthMonitor with a recording manager, a scripted probe runner and a virtual clock.

Probe loops are spawned into `pending` and run on the test's thread, one at a time, so
every schedule is deterministic: the clock's waits advance virtual time at once.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from ocirt.config.model import ContainerConfig, ContainerId, RestartPolicy, RestartPolicyType
from ocirt.errors import ImageError, OcirtError
from ocirt.health.healthcheck import Healthcheck, parse_healthcheck
from ocirt.health.monitor import HealthMonitor, SystemClock
from ocirt.health.probe import ProbeResult, RuncProbeRunner
from ocirt.health.state import HEALTHY, MAX_LOG_ENTRIES, MAX_OUTPUT, STARTING, UNHEALTHY, Health
from ocirt.manager.types import ContainerState, ContainerView, Event, EventKind, Status, StopOptions
from tests.support.fake_manager import FakeManager

CID = "c1"
STOP_TIMEOUT = 7.0


class RecordingManager:
    """The manager's calls the monitor makes, recorded; events emitted synchronously, a
    new start time at every start (as the real manager stamps one)."""

    def __init__(self) -> None:
        self.views: dict[str, ContainerView] = {}
        self.calls: list[tuple[object, ...]] = []
        self.subscribers: list[Callable[[Event], None]] = []
        self.fail_start: OcirtError | None = None
        self._starts = itertools.count(1)

    def add(self, cid: str, policy: RestartPolicyType, status: Status = Status.RUNNING) -> None:
        config = ContainerConfig(restart_policy=RestartPolicy(policy))
        state = ContainerState(status=status, pid=42, started_at=self._stamp())
        self.views[cid] = ContainerView(ContainerId(cid), cid, "img", config, "t0", state)

    def _stamp(self) -> str:
        return f"2026-01-01T00:00:{next(self._starts):02d}Z"

    def set_status(self, cid: str, status: Status, *, new_run: bool = False) -> None:
        view = self.views[cid]
        state = replace(view.state, status=status)
        if new_run:
            state = replace(state, started_at=self._stamp())
        self.views[cid] = replace(view, state=state)
        self._emit(EventKind.STATE, self.views[cid])

    def remove(self, cid: str) -> None:
        self.set_status(cid, Status.DEAD)
        self._emit(EventKind.REMOVED, self.views.pop(cid))

    def _emit(self, kind: EventKind, view: ContainerView) -> None:
        for callback in list(self.subscribers):
            callback(Event(kind, view))

    def get(self, cid: str, /) -> ContainerView:
        try:
            return self.views[cid]
        except KeyError:
            raise OcirtError(f"no such container {cid}") from None

    def list(self) -> list[ContainerView]:
        return list(self.views.values())

    def stop(self, cid: str, options: StopOptions, /) -> None:
        self.calls.append(("stop", cid, options))
        self.set_status(cid, Status.STOPPED)

    def start(self, cid: str, /) -> None:
        self.calls.append(("start", cid))
        if self.fail_start is not None:
            raise self.fail_start
        self.set_status(cid, Status.RUNNING, new_run=True)

    def subscribe(self, callback: Callable[[Event], None], /) -> Callable[[], None]:
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)


Step = ProbeResult | OSError | Callable[[], ProbeResult]


@dataclass
class ScriptedRunner:
    """Answers each probe from `script`; once it is used up, `exhausted` runs (the tests
    close the monitor there, which ends the loop). `seen` is the health before each probe."""

    script: list[Step]
    exhausted: Callable[[], None] = lambda: None
    health: Callable[[], object] = lambda: None
    calls: list[tuple[str, tuple[str, ...], float]] = field(default_factory=list)
    seen: list[object] = field(default_factory=list)

    def run(self, container_id: str, argv: Sequence[str], timeout: float, /) -> ProbeResult:
        self.calls.append((container_id, tuple(argv), timeout))
        self.seen.append(self.health())
        if not self.script:
            self.exhausted()
            return ProbeResult(0, "after the script")
        step = self.script.pop(0)
        if isinstance(step, OSError):
            raise step
        return step() if callable(step) else step


@dataclass
class VirtualClock:
    now: float = 1000.0
    waits: list[float] = field(default_factory=list)
    # Actions run at the n-th wait (1-based), before it returns.
    at: dict[int, Callable[[], None]] = field(default_factory=dict)

    def monotonic(self) -> float:
        return self.now

    def wait(self, stop: threading.Event, seconds: float, /) -> bool:
        self.waits.append(seconds)
        assert len(self.waits) < 1000, "the probe loop does not end"
        if stop.is_set():
            return True
        self.now += seconds
        action = self.at.get(len(self.waits))
        if action is not None:
            action()
        return stop.is_set()


def ok(output: str = "") -> ProbeResult:
    return ProbeResult(0, output)


def fail(output: str = "") -> ProbeResult:
    return ProbeResult(1, output)


@dataclass
class Harness:
    manager: RecordingManager
    runner: ScriptedRunner
    clock: VirtualClock
    monitor: HealthMonitor
    pending: list[Callable[[], None]]

    def run_loop(self) -> None:
        """Run the next spawned probe loop to its end."""
        self.pending.pop(0)()

    def status(self) -> str:
        health = self.monitor.health(CID)
        assert health is not None
        return health.status


def harness(
    check: Healthcheck | None,
    script: list[Step],
    policy: RestartPolicyType = RestartPolicyType.NO,
    *,
    start: bool = True,
) -> Harness:
    manager = RecordingManager()
    manager.add(CID, policy)
    runner = ScriptedRunner(list(script))
    clock = VirtualClock()
    pending: list[Callable[[], None]] = []
    monitor = HealthMonitor(
        manager,
        lambda ref: check,
        runner,
        STOP_TIMEOUT,
        clock=clock,
        spawn=lambda target, name: pending.append(target),
    )
    runner.exhausted = monitor.close
    runner.health = lambda: monitor.health(CID)
    if start:
        monitor.start()
    return Harness(manager, runner, clock, monitor, pending)


def statuses(seen: list[object]) -> list[str]:
    return [getattr(h, "status", None) or "-" for h in seen]


CHECK = Healthcheck(("/bin/check", "-q"), interval=5.0, timeout=2.0, retries=2)


def test_probes_every_interval_with_the_checks_command_and_timeout() -> None:
    h = harness(CHECK, [ok("fine"), ok("fine")])
    assert len(h.pending) == 1
    h.run_loop()
    assert h.clock.waits == [5.0, 5.0, 5.0]  # the first probe after one interval
    assert h.runner.calls == [(CID, ("/bin/check", "-q"), 2.0)] * 3
    health = h.monitor.health(CID)
    assert health is not None and health.status == HEALTHY
    assert [p.output for p in health.log] == ["fine", "fine"]
    assert not h.pending


def test_failures_in_the_start_period_do_not_count() -> None:
    check = Healthcheck(("c",), interval=3.0, timeout=1.0, start_period=10.0, retries=1)
    h = harness(check, [fail(), fail(), fail(), fail()])
    h.run_loop()
    # probes at +3, +6, +9 (in the start period), +12 (after it: one failure is enough)
    assert statuses(h.runner.seen) == [STARTING, STARTING, STARTING, STARTING, UNHEALTHY]
    health = h.monitor.health(CID)
    assert health is not None and health.failing_streak == 1 and len(health.log) == 4


def test_a_success_in_the_start_period_is_healthy() -> None:
    check = Healthcheck(("c",), interval=1.0, start_period=60.0, retries=1)
    h = harness(check, [fail(), ok(), fail()])
    h.run_loop()
    # the failure after healthy counts, even in the start period (Docker)
    assert statuses(h.runner.seen) == [STARTING, STARTING, HEALTHY, UNHEALTHY]


def test_starting_healthy_unhealthy_and_back() -> None:
    h = harness(CHECK, [ok(), fail(), fail(), fail(), ok()])
    h.run_loop()
    assert statuses(h.runner.seen) == [STARTING, HEALTHY, HEALTHY, UNHEALTHY, UNHEALTHY, HEALTHY]
    health = h.monitor.health(CID)
    assert health is not None and health.failing_streak == 0
    assert h.manager.calls == []  # restart policy "no"


def test_retries_failures_from_starting_make_unhealthy() -> None:
    h = harness(CHECK, [fail(), fail()])
    h.run_loop()
    assert statuses(h.runner.seen) == [STARTING, STARTING, UNHEALTHY]


def test_the_last_outputs_are_kept_bounded() -> None:
    outputs = [f"probe {i}" for i in range(MAX_LOG_ENTRIES + 2)] + ["x" * (3 * MAX_OUTPUT)]
    h = harness(CHECK, [ok(o) for o in outputs])
    h.run_loop()
    health = h.monitor.health(CID)
    assert health is not None
    kept = [p.output for p in health.log]
    assert kept[:-1] == outputs[-MAX_LOG_ENTRIES:-1]
    assert kept[-1] == "x" * MAX_OUTPUT
    shown = h.monitor.health_json(CID)
    assert shown is not None and shown["status"] == HEALTHY
    assert [entry["exitCode"] for entry in shown["log"]] == [0] * MAX_LOG_ENTRIES  # type: ignore[attr-defined]


@pytest.mark.parametrize("policy", [RestartPolicyType.ALWAYS, RestartPolicyType.UNLESS_STOPPED])
def test_an_unhealthy_container_is_restarted_when_its_policy_says_so(
    policy: RestartPolicyType,
) -> None:
    h = harness(CHECK, [ok(), fail(), fail(), ok(), ok()], policy)
    first_run = h.manager.views[CID].state.started_at
    h.run_loop()  # ends with the restart: the old run is over
    assert h.manager.calls == [
        ("stop", CID, StopOptions("SIGTERM", STOP_TIMEOUT, True)),
        ("start", CID),
    ]
    assert h.manager.views[CID].state.started_at != first_run
    # The new run starts afresh in `starting`, with its own loop.
    health = h.monitor.health(CID)
    assert health is not None and (health.status, health.log) == (STARTING, ())
    assert len(h.pending) == 1
    h.run_loop()
    assert h.status() == HEALTHY
    assert len(h.manager.calls) == 2


@pytest.mark.parametrize("policy", [RestartPolicyType.NO, RestartPolicyType.ON_FAILURE])
def test_no_restart_for_no_and_on_failure(policy: RestartPolicyType) -> None:
    h = harness(CHECK, [fail(), fail(), fail()], policy)
    h.run_loop()
    assert h.status() == UNHEALTHY
    assert h.manager.calls == []
    assert len(h.runner.calls) == 4  # it keeps probing the unhealthy container


def test_a_failed_restart_is_logged_and_the_run_ends(caplog: pytest.LogCaptureFixture) -> None:
    h = harness(CHECK, [fail(), fail()], RestartPolicyType.ALWAYS)
    h.manager.fail_start = OcirtError("no runtime")
    h.run_loop()
    assert [c[0] for c in h.manager.calls] == ["stop", "start"]
    assert "cannot restart unhealthy container c1: no runtime" in caplog.text
    assert h.status() == UNHEALTHY  # the stopped run's health is kept
    assert not h.pending


def test_no_restart_when_the_container_changed_meanwhile() -> None:
    h = harness(CHECK, [fail(), lambda: stopped_then(fail())], RestartPolicyType.ALWAYS)

    def stopped_then(result: ProbeResult) -> ProbeResult:
        # Another run began while the probe ran: the verdict is about the old one.
        h.manager.views[CID] = replace(
            h.manager.views[CID],
            state=replace(h.manager.views[CID].state, started_at="another run"),
        )
        return result

    h.run_loop()
    assert h.manager.calls == []


def test_monitoring_stops_when_the_container_stops_during_a_probe() -> None:
    def stop_then_fail() -> ProbeResult:
        h.manager.set_status(CID, Status.STOPPED)
        return fail()

    h = harness(CHECK, [ok(), stop_then_fail])
    h.run_loop()
    assert len(h.runner.calls) == 2
    health = h.monitor.health(CID)
    # The last run's health is kept; the probe cut short by the stop is not recorded.
    assert health is not None and health.status == HEALTHY and len(health.log) == 1


def test_monitoring_stops_when_the_container_stops_between_probes() -> None:
    h = harness(CHECK, [ok(), ok()])
    h.clock.at[2] = lambda: h.manager.set_status(CID, Status.EXITED)
    h.run_loop()
    assert len(h.runner.calls) == 1
    assert h.status() == HEALTHY


def test_a_removed_containers_health_is_dropped() -> None:
    h = harness(CHECK, [ok(), ok()])
    h.clock.at[2] = lambda: h.manager.remove(CID)
    h.run_loop()
    assert len(h.runner.calls) == 1
    assert h.monitor.health(CID) is None
    assert h.monitor.health_json(CID) is None


def test_a_paused_container_is_not_probed_until_resumed() -> None:
    h = harness(CHECK, [ok(), ok()])
    h.clock.at[2] = lambda: h.manager.set_status(CID, Status.PAUSED)
    h.clock.at[5] = lambda: h.manager.set_status(CID, Status.RUNNING)  # same run
    h.run_loop()
    assert len(h.clock.waits) == 6
    assert len(h.runner.calls) == 3  # after waits 1, 5 and 6 (the last ends the script)
    assert not h.pending  # the resume did not begin a new run


def test_a_probe_cut_short_by_a_pause_is_not_recorded() -> None:
    def pause_then_time_out() -> ProbeResult:
        h.manager.set_status(CID, Status.PAUSED)
        return ProbeResult(-1, "", timed_out=True)

    h = harness(Healthcheck(("c",), retries=1), [ok(), pause_then_time_out])
    h.clock.at[4] = lambda: h.manager.set_status(CID, Status.RUNNING)
    h.run_loop()
    assert statuses(h.runner.seen) == [STARTING, HEALTHY, HEALTHY]
    health = h.monitor.health(CID)
    assert health is not None and [p.exit_code for p in health.log] == [0]


def test_a_probe_timeout_counts_as_a_failure() -> None:
    timed_out = ProbeResult(-1, "", timed_out=True)
    h = harness(CHECK, [ok(), timed_out, timed_out])
    h.run_loop()
    health = h.monitor.health(CID)
    assert health is not None and health.status == UNHEALTHY
    assert (health.log[-1].exit_code, health.log[-1].output) == (
        -1,
        "Health check exceeded timeout (2s)",
    )


def test_a_probe_that_cannot_run_counts_as_a_failure() -> None:
    h = harness(Healthcheck(("c",), retries=1), [FileNotFoundError(2, "No such file", "runc")])
    h.run_loop()
    health = h.monitor.health(CID)
    assert health is not None and health.status == UNHEALTHY
    assert health.log[0].exit_code == -1
    assert health.log[0].output.startswith("cannot run the health check: ")


@pytest.mark.parametrize("raw", [None, {"Test": ["NONE"]}, {"Test": []}])
def test_no_check_or_a_disabled_one_is_never_probed(raw: object) -> None:
    h = harness(parse_healthcheck(raw), [])
    h.manager.set_status(CID, Status.RUNNING, new_run=True)
    assert h.pending == []
    assert h.monitor.health(CID) is None
    assert h.monitor.verdict(CID) is None


def test_an_unreadable_check_is_no_check(caplog: pytest.LogCaptureFixture) -> None:
    manager = RecordingManager()
    manager.add(CID, RestartPolicyType.ALWAYS)
    pending: list[Callable[[], None]] = []

    def lookup(ref: str) -> Healthcheck | None:
        raise ImageError("invalid image config: Healthcheck must be an object")

    monitor = HealthMonitor(
        manager, lookup, ScriptedRunner([]), spawn=lambda t, n: pending.append(t)
    )
    monitor.start()
    assert pending == [] and monitor.verdict(CID) is None
    assert "health check of img unknown" in caplog.text


def test_start_picks_up_running_containers_only_and_close_unsubscribes() -> None:
    h = harness(CHECK, [], start=False)
    h.manager.add("stopped", RestartPolicyType.NO, Status.STOPPED)
    h.manager.add("paused", RestartPolicyType.NO, Status.PAUSED)
    h.monitor.start()
    assert len(h.pending) == 1 and h.monitor.health(CID) is not None
    assert h.monitor.health("stopped") is None
    h.monitor.close()
    assert h.manager.subscribers == []
    h.run_loop()  # closed: ends at its first wait
    assert h.runner.calls == []
    h.manager.set_status("stopped", Status.RUNNING, new_run=True)
    assert len(h.pending) == 0


def test_verdict_is_the_current_runs_status_and_the_least_wait() -> None:
    check = Healthcheck(("c",), interval=5.0, timeout=2.0, start_period=3.0, retries=1)
    h = harness(check, [ok()])
    assert h.monitor.verdict(CID) == (STARTING, 7.0)  # one probe is longer than 3 s
    h.run_loop()
    assert h.monitor.verdict(CID) == (HEALTHY, 7.0)
    # A new run the monitor has not seen yet is `starting`, whatever the old one was.
    view = h.manager.views[CID]
    h.manager.views[CID] = replace(view, state=replace(view.state, started_at="next"))
    assert h.monitor.verdict(CID) == (STARTING, 7.0)
    long_start = replace(check, start_period=60.0)
    h2 = harness(long_start, [])
    assert h2.monitor.verdict(CID) == (STARTING, 60.0)


def test_the_default_spawn_runs_the_loop_on_its_own_thread() -> None:
    manager = RecordingManager()
    manager.add(CID, RestartPolicyType.NO)
    done = threading.Event()
    runner = ScriptedRunner([ok("threaded")])
    monitor = HealthMonitor(manager, lambda ref: CHECK, runner, clock=VirtualClock())
    threads: list[str] = []

    def finish() -> None:
        threads.append(threading.current_thread().name)
        monitor.close()
        done.set()

    runner.exhausted = finish
    monitor.start()
    assert done.wait(30)
    assert threads == ["ocirt-health-c1"]
    health = monitor.health(CID)
    assert health is not None and health.log[0].output == "threaded"


def test_system_clock() -> None:
    clock = SystemClock()
    stop = threading.Event()
    before = clock.monotonic()
    assert clock.wait(stop, 0.0) is False
    stop.set()
    assert clock.wait(stop, 3600.0) is True
    assert clock.monotonic() >= before


# From the deployment/health-gate work: over the shared in-memory manager.
GATE_CHECK = Healthcheck(argv=("true",), interval=3600.0, timeout=1.0, start_period=2.0)


def test_the_verdict_of_a_replaced_run_is_kept_for_the_gate() -> None:
    manager = FakeManager()
    cid = manager.create("img:1", ContainerConfig(), "app").id
    manager.start(cid)
    monitor = HealthMonitor(manager, lambda ref: GATE_CHECK, RuncProbeRunner(Path("/nonexistent")))
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
