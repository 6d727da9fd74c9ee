"""The monitor's lifecycle with real runc: readiness, exit records (status, signal,
OOM), the exit notice, surviving its launcher, and a failing create."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ocirt.errors import RuncError
from ocirt.logs.reader import read_logs
from ocirt.runtime.monitor import is_alive, launch, read_exit_record
from tests.support.waiting import LONG_WAIT, wait_for

if TYPE_CHECKING:
    from conftest import Env

pytestmark = pytest.mark.integration


def test_launch_reports_the_container_and_its_pid(env: Env) -> None:
    # Waits for /go, so that it is still there to look at when launch returns.
    script = "while [ ! -e /go ]; do sleep 0.02; done; exit 5"
    handle = env.launch(env.options(env.bundle(["/bin/sh", "-c", script])))
    state = json.loads(env.runc("state", env.container_id).stdout)
    # A create leaves the start to the launcher; a run has started it.
    assert state["status"] == ("running" if env.run_mode else "created")
    assert state["pid"] == handle.container_pid
    assert is_alive(handle.monitor_pid)
    # The container's init is the monitor's child (it is the subreaper).
    ppid = Path(f"/proc/{handle.container_pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    assert int(ppid) == handle.monitor_pid
    assert read_exit_record(env.state_dir) is None
    env.start()
    (env.rootfs / "go").touch()
    record = env.exit_record()
    assert (record.exit_code, record.signal, record.oom_killed) == (5, None, False)
    assert record.container_pid == handle.container_pid
    wait_for("the monitor to exit", lambda: not is_alive(handle.monitor_pid), LONG_WAIT)


def test_runc_writes_no_pid_file_and_the_monitor_keeps_the_pid(env: Env) -> None:
    # runc 1.1 writes --pid-file with O_SYNC: a synchronous disk write on the way of
    # every start. The monitor takes the pid from runc's state.json instead.
    seen = env.tmp / "runc-args"
    wrapper = env.tmp / "runc-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {seen}\nexec runc "$@"\n')
    wrapper.chmod(0o755)
    handle = env.launch(env.options(env.bundle(["sleep", "300"]), runtime=str(wrapper)))
    assert "--pid-file" not in seen.read_text()
    state = json.loads(env.runc("state", env.container_id).stdout)
    assert handle.container_pid == state["pid"] > 0
    pid_file = env.state_dir / "container.pid"
    wait_for("the monitor's pid file", pid_file.exists)
    assert int(pid_file.read_text()) == handle.container_pid
    env.start()
    env.runc("kill", env.container_id, "KILL")
    assert env.exit_record().container_pid == handle.container_pid


def test_a_container_that_exits_at_once_keeps_its_status_and_output(env: Env) -> None:
    # After a run, init is often dead before the monitor has read the pid file: its
    # exit must still be the one recorded, and what it wrote must be in the log.
    handle = env.launch(env.options(env.bundle(["/bin/sh", "-c", "echo early; exit 4"])))
    env.start()
    record = env.exit_record()
    assert (record.exit_code, record.signal, record.oom_killed) == (4, None, False)
    assert record.container_pid == handle.container_pid
    assert [e.text for e in read_logs(env.state_dir / "json.log")] == ["early\n"]


def test_kill_sigkill_gives_137_and_a_notice(env: Env) -> None:
    notify = env.state_dir.parent / f"{env.state_dir.name}.notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(notify))
        try:
            env.launch(env.options(env.bundle(["sleep", "300"]), notify_socket=notify))
            env.start()
            env.runc("kill", env.container_id, "KILL")
            listener.settimeout(60)
            notice = json.loads(listener.recv(4096))
        finally:
            notify.unlink()
    assert notice == {"id": env.container_id, "exitCode": 137}
    record = read_exit_record(env.state_dir)
    assert record is not None
    assert (record.exit_code, record.signal, record.oom_killed) == (137, 9, False)


def test_oom_kill_is_recorded(env: Env) -> None:
    # `tail` keeps the whole newline-free input in memory: far past the 8 MiB limit.
    bundle = env.bundle(["/bin/sh", "-c", "head -c 100m /dev/zero | tail"], memory=8 << 20)
    env.launch(env.options(bundle))
    env.start()
    record = env.exit_record()
    assert record.exit_code == 137
    assert record.oom_killed is True


def test_oom_kill_is_recorded_when_the_watch_comes_during_the_exit(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An init OOM-killed before the monitor armed its watch. The hook arms it only once
    the init is exiting (PF_EXITING): while it frees its memory and is not yet a zombie,
    its /proc/<pid>/cgroup names the root cgroup on cgroup v1, not its own."""
    if not env.run_mode:
        pytest.skip("the watch is armed before a create's container can start")
    monkeypatch.setenv("OCIRT_MONITOR_TEST_OOM_WATCH_LATE", "1")
    # Once the monitor looks (/go), the init itself becomes the victim: `tail` keeps the
    # newline-free input in memory up to the limit, which its exit then has to free.
    script = (
        "while [ ! -e /go ]; do sleep 0.01; done; mkfifo /zero.fifo; "
        "head -c 2000m /dev/zero > /zero.fifo & exec tail /zero.fifo"
    )
    bundle = env.bundle(["/bin/sh", "-c", script], memory=256 << 20)
    monitor_log = env.state_dir / "monitor.log"

    def open_the_gate() -> None:
        wait_for(
            "the monitor in its hook",
            lambda: monitor_log.exists() and b"test hook" in monitor_log.read_bytes(),
            LONG_WAIT,
        )
        (env.rootfs / "go").touch()

    with ThreadPoolExecutor(1) as pool:
        gate = pool.submit(open_the_gate)
        env.launch(env.options(bundle))
        gate.result()
    record = env.exit_record()
    assert (record.exit_code, record.signal, record.oom_killed) == (137, 9, True)
    assert b"oomKilled will be false" not in monitor_log.read_bytes()


LAUNCHER = textwrap.dedent(
    """
    import subprocess, sys, time
    from pathlib import Path
    from ocirt.runtime.monitor import LogOptions, MonitorOptions, launch
    state, bundle, root, cid = map(Path, sys.argv[1:5])
    handle = launch(MonitorOptions(container_id=str(cid), bundle=bundle, state_dir=state,
                    runtime_root=root, log=LogOptions(path=state / "json.log")))
    subprocess.run(["runc", "--root", str(root), "start", str(cid)], check=True)
    print(handle.monitor_pid, flush=True)
    time.sleep(3600)
    """
)


def test_container_and_log_outlive_a_killed_launcher(env: Env) -> None:
    script = "while [ ! -e /stop ]; do echo tick; sleep 0.05; done; echo bye"
    bundle = env.bundle(["/bin/sh", "-c", script])
    args = [str(env.state_dir), str(bundle), str(env.runc_root), env.container_id]
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert launcher.stdout is not None
        monitor_pid = int(launcher.stdout.readline())
        env.monitor_pids.append(monitor_pid)
    finally:
        launcher.kill()
        launcher.wait()
    assert launcher.returncode == -signal.SIGKILL
    seen = len(env.log_lines())
    wait_for("the log to keep growing", lambda: len(env.log_lines()) > seen + 5, LONG_WAIT)
    assert is_alive(monitor_pid)
    (env.rootfs / "stop").touch()
    record = env.exit_record()
    assert record.exit_code == 0
    entries = list(read_logs(env.state_dir / "json.log"))
    assert entries[-1].text == "bye\n"
    assert {e.text for e in entries[:-1]} == {"tick\n"}


def test_failed_create_raises_runc_error_with_runc_text(env: Env) -> None:
    bundle = env.tmp / "empty-bundle"
    bundle.mkdir()
    with pytest.raises(RuncError) as caught:
        launch(env.options(bundle))
    assert "config.json" in caught.value.stderr
    # runc's own words, not its JSON log lines.
    assert '"level"' not in caught.value.stderr
    assert caught.value.returncode == 1
    assert "config.json" in caught.value.message
    assert ("run failed" if env.run_mode else "create failed") in caught.value.message
    assert read_exit_record(env.state_dir) is None
    listed = env.runc("list", "-q").stdout.split()
    assert env.container_id not in listed


def test_sigterm_to_the_monitor_is_not_forwarded(env: Env) -> None:
    # The trap only works if the container did not inherit an ignored SIGTERM from the
    # monitor (POSIX shells cannot trap a signal ignored on entry).
    script = 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'
    handle = env.launch(env.options(env.bundle(["/bin/sh", "-c", script])))
    env.start()
    wait_for("the container to be ready", lambda: env.log_lines(), LONG_WAIT)
    os.kill(handle.monitor_pid, signal.SIGTERM)
    state = json.loads(env.runc("state", env.container_id).stdout)
    assert state["status"] == "running"
    assert is_alive(handle.monitor_pid)
    assert read_exit_record(env.state_dir) is None
    env.runc("kill", env.container_id, "TERM")
    record = env.exit_record()
    assert (record.exit_code, record.signal) == (42, None)
