"""`kill -9` of the manager: containers outlive it, a new manager re-attaches and
reconciles, whatever step the old one was killed at (ocirt.manager.faults)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocirt.config.state import Status
from ocirt.manager.types import StopOptions
from tests.support.env import Env
from tests.support.waiting import wait_for

from .manager_support import SERVE, cfg

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).with_name("manager_proc.py")

TICKING = ("sh", "-c", "trap 'exit 0' TERM; while true; do echo tick; sleep 0.05; done")
# Waits for /exit-now in its rootfs, then exits with $CODE.
WAITING = ("sh", "-c", 'while [ ! -e /exit-now ]; do sleep 0.05; done; exit "$CODE"')


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def _spawn(
    env: Env,
    procs: list[subprocess.Popen[str]],
    steps: list[list[object]],
    crash_at: str | None = None,
) -> subprocess.Popen[str]:
    child_env = dict(os.environ)
    child_env.pop("OCIRT_TEST_CRASH_AT", None)
    if crash_at:
        child_env["OCIRT_TEST_CRASH_AT"] = crash_at
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPT),
            str(env.home),
            str(env.exec_root),
            str(env.runc_root),
            str(env.rootfs),
            json.dumps(steps),
            env.cgroup_parent,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env,
    )
    procs.append(proc)
    return proc


def _read_until(proc: subprocess.Popen[str], step: str) -> dict[str, str]:
    assert proc.stdout is not None
    for line in proc.stdout:
        report = json.loads(line)
        if report["step"] == step:
            return dict(report["ids"])
    raise AssertionError(f"manager process ended before {step} (rc {proc.wait()})")


def _runc_status(env: Env, cid: str) -> str:
    return str(env.runc_state(cid)["status"])


def test_containers_outlive_a_killed_manager_and_are_reattached(
    env: Env, procs: list[subprocess.Popen[str]]
) -> None:
    steps: list[list[object]] = [
        ["create", "ticker", list(TICKING), "no", []],
        ["create", "failing", list(WAITING), "on-failure:2", ["CODE=4"]],
        ["create", "later", list(WAITING), "no", ["CODE=0"]],
        ["start", "ticker"],
        ["start", "failing"],
        ["start", "later"],
        ["hold"],
    ]
    proc = _spawn(env, procs, steps)
    ids = _read_until(proc, "hold")
    ticker_pid = env.runc_state(ids["ticker"])["pid"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    # With no manager: every container runs on, and the ticker keeps being logged.
    for cid in ids.values():
        assert _runc_status(env, cid) == "running"
    log = env.home / "containers" / ids["ticker"] / "json.log"
    size = log.stat().st_size
    wait_for("the log to grow", lambda: log.stat().st_size > size + 200)
    # One container exits while no manager runs; its monitor records the exit.
    env.exec(ids["failing"], "touch", "/exit-now")
    exit_record = env.home / "containers" / ids["failing"] / "monitor" / "exit.json"
    wait_for("the exit record", exit_record.exists)

    mgr = env.manager()
    ticker = mgr.get(ids["ticker"])
    assert ticker.state.status is Status.RUNNING
    assert ticker.state.pid == ticker_pid
    # The exit that happened meanwhile is applied, policy included: on-failure restarts
    # it, and since /exit-now is still there it fails again, up to the retry limit.
    wait_for(
        "the restarts",
        lambda: (
            mgr.get(ids["failing"]).restart_count == 2
            and mgr.get(ids["failing"]).state.status is Status.EXITED
        ),
    )
    assert mgr.get(ids["failing"]).state.exit_code == 4
    assert ids["failing"] not in env.runc_ids()
    # A later exit is seen by the new manager: exit 0 with policy no stays EXITED.
    assert mgr.get(ids["later"]).state.status is Status.RUNNING
    env.exec(ids["later"], "touch", "/exit-now")
    wait_for("the later exit", lambda: mgr.get(ids["later"]).state.status is Status.EXITED)
    later = mgr.get(ids["later"])
    assert (later.state.exit_code, later.restart_count) == (0, 0)
    assert ids["later"] not in env.runc_ids()
    mgr.stop(ids["ticker"], StopOptions(timeout=10))
    assert mgr.get(ids["ticker"]).state.exit_code == 0
    entries = [e.text for e in mgr.logs(ids["ticker"])]
    assert entries and set(entries) == {"tick\n"}


def test_a_manager_closed_cleanly_leaves_containers_running(
    env: Env, procs: list[subprocess.Popen[str]]
) -> None:
    proc = _spawn(env, procs, [["create", "c", list(SERVE), "no", []], ["start", "c"]])
    ids = _read_until(proc, "start")
    assert proc.wait() == 0
    assert _runc_status(env, ids["c"]) == "running"
    mgr = env.manager()
    assert mgr.get(ids["c"]).state.status is Status.RUNNING
    mgr.close(stop_containers=True)
    assert ids["c"] not in env.runc_ids()
    # Stopped by the manager, not by the user: it comes back when the policy allows.
    assert not env.manager().get(ids["c"]).manually_stopped


def test_unless_stopped_containers_return_after_a_manager_restart(
    env: Env, procs: list[subprocess.Popen[str]]
) -> None:
    steps: list[list[object]] = [
        ["create", "kept", list(SERVE), "unless-stopped", []],
        ["create", "stopped", list(SERVE), "unless-stopped", []],
        ["create", "never", list(SERVE), "unless-stopped", []],
        ["start", "kept"],
        ["start", "stopped"],
        ["stop", "stopped"],
    ]
    ids = _read_until(_spawn(env, procs, steps), "stop")
    mgr = env.manager()
    mgr.close(stop_containers=True)
    assert env.runc_ids() == []
    mgr = env.manager()
    wait_for("the boot start", lambda: mgr.get(ids["kept"]).state.status is Status.RUNNING)
    assert mgr.get(ids["stopped"]).state.status is Status.STOPPED
    # Never started successfully: not started at manager start (Kanto).
    assert mgr.get(ids["never"]).state.status is Status.CREATED


CREATE = [["create", "x", list(SERVE), "unless-stopped", []]]
START = [*CREATE, ["start", "x"]]
REMOVE = [*START, ["remove", "x"]]


@pytest.mark.parametrize(
    ("step", "steps", "expected"),
    [
        ("create:after-dir", CREATE, None),
        ("create:after-rootfs", CREATE, None),
        ("create:after-bundle", CREATE, None),
        ("start:after-run", START, Status.CREATED),
        ("start:after-handle", START, Status.CREATED),
        ("remove:after-dead", REMOVE, None),
        ("remove:after-delete", REMOVE, None),
    ],
)
def test_kill_9_at_each_step_leaves_a_store_that_reconciles(
    env: Env,
    procs: list[subprocess.Popen[str]],
    step: str,
    steps: list[list[object]],
    expected: Status | None,
) -> None:
    proc = _spawn(env, procs, steps, crash_at=step)
    assert proc.wait() == -signal.SIGKILL
    mgr = env.manager()
    views = mgr.list()
    if expected is None:
        assert views == []
        assert not any((env.home / "containers").iterdir())
    else:
        assert [v.state.status for v in views] == [expected]
    # No runc container and no monitor is left over, whatever the step.
    assert env.runc_ids() == []
    wait_for("monitors to end", lambda: env.monitor_pids() == [])
    # And the store works on: create, start, remove.
    cid = mgr.create("busybox", cfg()).id
    mgr.start(cid)
    for view in mgr.list():
        mgr.remove(view.id, force=True)
    assert mgr.list() == []
    assert env.runc_ids() == []
