"""The daemon as a process among others: one per home (a second one refuses at once),
and SIGHUP reopens the log file (logrotate) instead of killing the daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from service_harness import WAIT, Cloud, Service

pytestmark = pytest.mark.integration


def test_second_daemon_on_the_same_home_refuses_at_once(service: Service, cloud: Cloud) -> None:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    assert service.proc is not None
    first = service.proc.pid
    socket_inode = service.socket.stat().st_ino
    bootstraps = cloud.bootstraps

    second = subprocess.run(
        [sys.executable, "-m", "ocirt.cli.main", "daemon", "--config", str(service.config_path),
         "--cgroup-parent", service.cgroup_parent],
        capture_output=True, text=True, timeout=WAIT, check=False,
    )  # fmt: skip
    assert second.returncode != 0
    assert second.stderr.strip() == f"Error: ocirt is already running (pid {first})"
    # The first daemon's socket is untouched and still answers; no second MQTT client
    # asked for an identity.
    assert service.socket.stat().st_ino == socket_inode
    assert json.loads(service.cli("list", "--json").stdout) == []
    assert cloud.bootstraps == bootstraps
    assert service.proc.poll() is None

    # Once the first is gone, a new one starts on the same home.
    assert service.stop() == 0
    service.start()
    assert json.loads(service.cli("list", "--json").stdout) == []


def test_sighup_reopens_the_log_file(service: Service, cloud: Cloud) -> None:
    log_file = service.tmp / "logs" / "ocirt.log"
    service.extra_config = {"log": {"log_file": str(log_file), "log_level": "DEBUG"}}
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    assert service.proc is not None
    assert "ocirt daemon ready" in log_file.read_text()
    rotated = log_file.with_name("ocirt.log.1")
    os.rename(log_file, rotated)

    service.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + WAIT
    while not log_file.exists() and time.monotonic() < deadline and service.proc.poll() is None:
        time.sleep(0.05)
    assert service.proc.poll() is None, "SIGHUP killed the daemon"
    assert log_file.exists()
    # What the daemon logs now goes to the new file, not to the renamed one.
    before = rotated.read_text()
    assert service.cli("list").returncode == 0
    got = cloud.call("create", "ContainerFactory", {"imageRef": "localhost/busybox:itest"})
    assert got.body["status"] == 200
    assert "log file reopened on SIGHUP" in log_file.read_text()
    assert rotated.read_text() == before
    assert service.stop() == 0
