"""Damaged files after a power cut or a bad flash page: the manager keeps healthy
containers running and damaged ones visible (issue 12, items 5 and 6). Real runc."""

from __future__ import annotations

import pytest

from ocirt.config.state import Status
from ocirt.manager.types import StopOptions
from ocirt.runtime import monitor
from tests.support.env import Env
from tests.support.waiting import wait_for

from .manager_support import cfg

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("garbage", "pid_file_too"),
    [(b'{"monitorPid":', False), (b"\x00\xff garbage", False), (b"", True)],
)
def test_a_garbled_handle_does_not_get_a_healthy_container_killed(
    env: Env, garbage: bytes, pid_file_too: bool
) -> None:
    mgr = env.manager()
    view = mgr.create("img", cfg())
    mgr.start(view.id)
    state_dir = env.home / "containers" / view.id / "monitor"
    handle = monitor.read_handle(state_dir)
    assert handle is not None
    pid = env.runc_state(view.id)["pid"]
    mgr.close()
    (state_dir / monitor.HANDLE_FILE).write_bytes(garbage)
    if pid_file_too:
        # Then the monitor is found among all processes by its --state-dir.
        (state_dir / "container.pid").write_bytes(b"\xff")

    mgr = env.manager()
    again = mgr.get(view.id)
    assert again.state.status is Status.RUNNING
    assert again.state.pid == pid
    assert env.runc_state(view.id)["status"] == "running"
    # The handle is re-derived from /proc (the monitor is the init's parent) and kept.
    found = monitor.read_handle(state_dir)
    assert found is not None and found.monitor_pid == handle.monitor_pid
    if not pid_file_too:
        assert found == handle
    # The periodic sweep sees a live monitor too, and a later stop works through it.
    mgr.supervisor.sweep()
    mgr.stop(view.id, StopOptions(timeout=10))
    stopped = mgr.get(view.id)
    assert stopped.state.status is Status.STOPPED
    assert stopped.state.exit_code == 0
    assert view.id not in env.runc_ids()


@pytest.mark.parametrize("damage", ["garbled", "missing"])
def test_a_damaged_record_keeps_the_container_and_its_logs_until_removed(
    env: Env, damage: str
) -> None:
    mgr = env.manager()
    view = mgr.create(
        "img", cfg("sh", "-c", "echo hello; trap 'exit 0' TERM; while :; do sleep 1; done")
    )
    mgr.start(view.id)
    directory = env.home / "containers" / view.id
    wait_for("the log", lambda: b"hello" in (directory / "json.log").read_bytes())
    pid = env.runc_state(view.id)["pid"]
    mgr.close()
    if damage == "missing":
        (directory / "config.json").unlink()
    else:
        (directory / "config.json").write_bytes(b'{"container_id":"\xff')

    mgr = env.manager()
    assert env.runc_state(view.id)["status"] == "running"
    assert env.runc_state(view.id)["pid"] == pid
    listed = {v.id: v for v in mgr.list()}
    assert listed[view.id].state.status is Status.UNKNOWN
    assert listed[view.id].state.error.startswith("damaged: ")
    assert [e.text for e in mgr.logs(view.id)] == ["hello\n"]
    monitors = env.monitor_pids()
    assert monitors

    mgr.remove(view.id)
    assert view.id not in env.runc_ids()
    assert not directory.exists()
    assert mgr.list() == []
    assert list((env.home / "containers").iterdir()) == []
    wait_for("the monitor to end", lambda: not any(monitor.is_alive(p) for p in monitors))
