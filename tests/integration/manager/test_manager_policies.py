"""Restart policies, OOM kills and log rotation through the manager, on real containers."""

from __future__ import annotations

import json

import pytest

from ocirt.config.model import LogConfig, Resources, RestartPolicy, RestartPolicyType
from ocirt.config.state import Status
from ocirt.manager.manager import Manager
from ocirt.manager.types import StopOptions
from tests.support.env import Env
from tests.support.recorder import Recorder
from tests.support.waiting import wait_for

from .manager_support import SERVE, cfg

pytestmark = pytest.mark.integration

# Counts its runs in the rootfs (which survives restarts): exits 3 on the first
# `runs - 1` runs, then serves until stopped.
COUNTING = (
    "sh",
    "-c",
    "n=$(cat /run.count 2>/dev/null || echo 0); n=$((n+1)); echo $n > /run.count; "
    'if [ "$n" -ge "$RUNS" ]; then ' + SERVE[2] + "; fi; exit 3",
)


def _policy(kind: RestartPolicyType, **kw: int) -> RestartPolicy:
    return RestartPolicy(kind, **kw)


def _settled(mgr: Manager, cid: str) -> bool:
    """No restart is pending: the manager decided not to restart (white-box check)."""
    entry = mgr.registry.get(cid)
    with entry.lock:
        return entry.timer is None and not entry.state.status.is_active


def test_on_failure_retries_max_count_then_stays_exited(
    env: Env, mgr: Manager, events: Recorder
) -> None:
    policy = _policy(RestartPolicyType.ON_FAILURE, max_retry_count=2)
    cid = mgr.create("busybox", cfg("sh", "-c", "exit 3", restart_policy=policy)).id
    mgr.start(cid)
    history = events.wait(cid, 8)
    assert history == [
        ("created", "CREATED"),
        ("state", "CREATED"),
        ("state", "RUNNING"),
        ("state", "EXITED"),
        ("state", "RUNNING"),
        ("state", "EXITED"),
        ("state", "RUNNING"),
        ("state", "EXITED"),
    ]
    wait_for("the policy decision", lambda: _settled(mgr, cid))
    view = mgr.get(cid)
    assert view.state.status is Status.EXITED
    assert view.state.exit_code == 3
    assert view.restart_count == 2
    assert cid not in env.runc_ids()
    # A manual start resets the counter (Kanto).
    mgr.start(cid)
    wait_for("the next exit", lambda: mgr.get(cid).state.status is Status.EXITED)
    assert mgr.get(cid).restart_count in (0, 1, 2)


def test_on_failure_does_not_restart_a_clean_exit(env: Env, mgr: Manager) -> None:
    policy = _policy(RestartPolicyType.ON_FAILURE)
    cid = mgr.create("busybox", cfg("true", restart_policy=policy)).id
    mgr.start(cid)
    wait_for("the exit", lambda: mgr.get(cid).state.status is Status.EXITED)
    wait_for("the policy decision", lambda: _settled(mgr, cid))
    assert mgr.get(cid).restart_count == 0
    assert mgr.get(cid).state.exit_code == 0


def test_no_never_restarts(env: Env, mgr: Manager) -> None:
    cid = mgr.create("busybox", cfg("sh", "-c", "exit 1")).id
    mgr.start(cid)
    wait_for("the exit", lambda: mgr.get(cid).state.status is Status.EXITED)
    wait_for("the policy decision", lambda: _settled(mgr, cid))
    view = mgr.get(cid)
    assert (view.state.exit_code, view.restart_count) == (1, 0)


@pytest.mark.parametrize("kind", [RestartPolicyType.ALWAYS, RestartPolicyType.UNLESS_STOPPED])
def test_always_and_unless_stopped_restart_until_stopped(
    env: Env, mgr: Manager, kind: RestartPolicyType
) -> None:
    cid = mgr.create("busybox", cfg(*COUNTING, env=("RUNS=3",), restart_policy=_policy(kind))).id
    mgr.start(cid)
    wait_for(
        "the third run",
        lambda: mgr.get(cid).restart_count == 2 and mgr.get(cid).state.status is Status.RUNNING,
    )
    assert env.exec(cid, "cat", "/run.count").strip() == "3"
    # A manual stop is respected by every policy (docs/kanto-compatibility.md decision 9).
    mgr.stop(cid, StopOptions(timeout=10))
    wait_for("the policy decision", lambda: _settled(mgr, cid))
    view = mgr.get(cid)
    assert view.state.status is Status.STOPPED
    assert view.manually_stopped
    assert cid not in env.runc_ids()


def test_backoff_grows_between_restarts(env: Env, mgr: Manager, events: Recorder) -> None:
    policy = _policy(RestartPolicyType.ON_FAILURE, max_retry_count=4)
    cid = mgr.create("busybox", cfg("sh", "-c", "exit 2", restart_policy=policy)).id
    mgr.start(cid)
    events.wait(cid, 2 + 1 + 2 * 4 + 1)
    wait_for("the policy decision", lambda: _settled(mgr, cid))
    assert mgr.get(cid).restart_count == 4
    # The delays the manager chose: 100 ms doubling (each run is far shorter than 10 s).
    assert mgr.registry.get(cid).backoff == pytest.approx(0.8)


def test_oom_kill_is_reported(env: Env, mgr: Manager, events: Recorder) -> None:
    config = cfg(
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail",
        resources=Resources(memory="8M"),
    )
    cid = mgr.create("busybox", config).id
    mgr.start(cid)
    wait_for("the OOM kill", lambda: mgr.get(cid).state.status is Status.EXITED)
    state = mgr.get(cid).state
    assert state.oom_killed
    assert state.exit_code == 137
    assert state.error == "OOM Killed"
    assert state.finished_at.endswith("Z")
    persisted = json.loads((env.home / "containers" / cid / "config.json").read_text())
    assert persisted["state"]["oomKilled"] is True
    assert persisted["state"]["error"] == "OOM Killed"
    assert persisted["state"]["status"] == Status.EXITED.value


def test_log_rotation_keeps_max_files_and_loses_no_line(env: Env, mgr: Manager) -> None:
    lines = 30000
    log = LogConfig(max_files=3, max_size="100K")
    cid = mgr.create("busybox", cfg("seq", "1", str(lines), log=log)).id
    mgr.start(cid)
    wait_for("the exit", lambda: mgr.get(cid).state.status is Status.EXITED)
    directory = env.home / "containers" / cid
    assert sorted(p.name for p in directory.glob("json.log*")) == [
        "json.log",
        "json.log.1",
        "json.log.2",
    ]
    for rotated in ("json.log.1", "json.log.2"):
        # Rotation happens before a write once the size is reached (Docker): one line over.
        assert 100 * 1024 <= (directory / rotated).stat().st_size < 100 * 1024 + 200
    numbers = [int(entry.text) for entry in mgr.logs(cid)]
    # The oldest files were rotated away; what is kept is gap-free up to the last line.
    assert numbers[-1] == lines
    assert numbers == list(range(numbers[0], lines + 1))
    assert len(numbers) > 2 * 100 * 1024 // 100
    assert [int(e.text) for e in mgr.logs(cid, tail=5)] == list(range(lines - 4, lines + 1))
