"""Fixtures for the monitor suite: an Env per test (bundle, launch options, runc), torn
down with the containers and monitors it started. Tests use only the `env` fixture.

Every test runs twice: with the monitor running `runc create` and the test `runc start`
("create"), and with the monitor running `runc run -d` ("run", as the manager does), in
which case `Env.start` has nothing left to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocirt.runtime.monitor import (
    ExitRecord,
    LogOptions,
    MonitorHandle,
    MonitorOptions,
    is_alive,
    launch,
    read_exit_record,
)
from tests.support.waiting import LONG_WAIT, wait_for


class Env:
    """One test's runc root, rootfs and directories, and the monitors it started."""

    def __init__(self, runc_root: Path, rootfs: Path, tmp_path: Path, mode: str) -> None:
        self.run_mode = mode == "run"
        self.runc_root = runc_root
        self.rootfs = rootfs
        self.tmp = tmp_path
        self.monitor_pids: list[int] = []
        # Sockets live under /run: tmp_path can be too long for a unix socket path.
        self.state_dir = Path("/run") / f"ocirt-mon-{uuid.uuid4().hex[:10]}"
        self.container_id = f"mon-{uuid.uuid4().hex[:12]}"

    def bundle(self, args: list[str], *, tty: bool = False, memory: int | None = None) -> Path:
        bundle = self.tmp / "bundle"
        bundle.mkdir(exist_ok=True)
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        config = json.loads((bundle / "config.json").read_text())
        config["root"] = {"path": str(self.rootfs), "readonly": False}
        config["process"]["terminal"] = tty
        config["process"]["args"] = args
        # Relative: runc nests it under our own cgroup, and `runc delete` removes it.
        config["linux"]["cgroupsPath"] = self.container_id
        if memory is not None:
            config["linux"].setdefault("resources", {})["memory"] = {
                "limit": memory,
                "swap": memory,
            }
        (bundle / "config.json").write_text(json.dumps(config))
        return bundle

    def options(self, bundle: Path, **kwargs: Any) -> MonitorOptions:
        log = kwargs.pop("log", None) or LogOptions(path=self.state_dir / "json.log")
        kwargs.setdefault("start", self.run_mode)
        return MonitorOptions(
            container_id=self.container_id,
            bundle=bundle,
            state_dir=self.state_dir,
            runtime_root=self.runc_root,
            log=log,
            **kwargs,
        )

    def launch(self, options: MonitorOptions) -> MonitorHandle:
        handle = launch(options)
        self.monitor_pids.append(handle.monitor_pid)
        return handle

    def runc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runc", "--root", str(self.runc_root), *args],
            capture_output=True,
            text=True,
            check=True,
        )

    def start(self) -> None:
        """`runc start` after a create; a run started the container already."""
        if not self.run_mode:
            self.runc("start", self.container_id)

    def exit_record(self) -> ExitRecord:
        """Wait for the container's exit record."""
        record: ExitRecord = wait_for(
            "the exit record", lambda: read_exit_record(self.state_dir), LONG_WAIT
        )
        return record

    def log_lines(self) -> list[bytes]:
        path = self.state_dir / "json.log"
        return path.read_bytes().splitlines(keepends=True) if path.exists() else []


@pytest.fixture(params=["create", "run"])
def env(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Env]:
    e = Env(runc_root, rootfs_copy, tmp_path, request.param)
    try:
        yield e
    finally:
        # Containers first (the runc_root fixture force-deletes too), then any monitor
        # still alive, by the pid it reported.
        subprocess.run(
            ["runc", "--root", str(runc_root), "delete", "-f", e.container_id],
            capture_output=True,
            check=False,
        )
        for pid in e.monitor_pids:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(e.state_dir)], check=False)
