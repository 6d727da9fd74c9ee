"""One suite for the manager's `Runtime` port: the real runtime (runc through the monitor,
as root) and the recording `FakeRuntime` the manager's unit tests use, so the fake keeps
the real one's behaviour (containerd's contract-suite idea)."""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocirt.config.ditto import CreateRequest, new_definition
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    ContainerId,
    NetworkMode,
    Resources,
)
from ocirt.manager import bundle
from ocirt.manager.ports import Runtime
from ocirt.runtime import monitor
from ocirt.runtime.hostfacts import read_host_facts
from ocirt.runtime.monitored import MonitoredRunc
from ocirt.runtime.runc import RuncStatus
from ocirt.spec.facts import ImageConfig, NetworkAttachment
from tests.support.fake_runtime import FakeRuntime
from tests.support.waiting import wait_for


@dataclass
class Run:
    definition: ContainerDefinition
    bundle: Path
    state_dir: Path
    log: Path

    @property
    def id(self) -> str:
        return self.definition.id


@dataclass
class Rig:
    runtime: Runtime
    base: Path
    rootfs: Path | None
    cgroup_parent: str
    runs: list[Run] = field(default_factory=list)

    def prepare(self, *cmd: str) -> Run:
        """A container's bundle (the manager's own spec assembly) and state dir."""
        cid = ContainerId(f"ct-{uuid.uuid4().hex[:12]}")
        config = ContainerConfig(network_mode=NetworkMode.HOST, cmd=cmd)
        definition = new_definition(cid, CreateRequest("busybox", start=False, config=config))
        root = self.base / cid
        rootfs = root / "bundle" / "rootfs"
        if self.rootfs is not None:
            shutil.copytree(self.rootfs, rootfs, symlinks=True)
        else:
            rootfs.mkdir(parents=True)
        spec = bundle.make_spec(
            definition,
            image=ImageConfig(),
            host=read_host_facts(),
            network=NetworkAttachment.host(),
            paths=bundle.bundle_paths(cid, rootfs, cgroup_parent=self.cgroup_parent),
        )
        bundle.write_spec(root / "bundle" / "config.json", spec)
        run = Run(definition, root / "bundle", root / "monitor", root / "json.log")
        self.runs.append(run)
        return run

    def launch(self, *cmd: str) -> Run:
        run = self.prepare(*cmd)
        handle = self.runtime.launch(run.definition, run.bundle, run.state_dir, run.log)
        self.runtime.save_handle(handle)
        return run

    def status(self, run: Run) -> RuncStatus | None:
        found = [s.status for s in self.runtime.list() if s.id == run.id]
        return found[0] if found else None


@pytest.fixture(params=["fake", pytest.param("runc", marks=pytest.mark.integration)])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "fake":
        yield Rig(FakeRuntime(), tmp_path, None, "ocirt")
        return
    runc_root: Path = request.getfixturevalue("runc_root")
    the_rig = Rig(
        MonitoredRunc(runc_root),
        # Short paths: the monitor's sockets live in the state dir (sun_path).
        runc_root.parent / "c",
        request.getfixturevalue("busybox_rootfs"),
        request.getfixturevalue("cgroup_parent"),
    )
    try:
        yield the_rig
    finally:
        for run in the_rig.runs:
            the_rig.runtime.delete(run.id)
            pid = monitor.read_monitor_pid(run.state_dir)
            if pid is not None and monitor.is_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_launched_container_runs_until_killed(rig: Rig) -> None:
    run = rig.launch("sleep", "1000")
    assert rig.status(run) is RuncStatus.RUNNING
    assert rig.runtime.alive(run.state_dir)
    assert rig.runtime.read_exit(run.state_dir) is None
    assert rig.runtime.kill(run.id, "SIGKILL")
    record = wait_for("the exit record", lambda: rig.runtime.read_exit(run.state_dir))
    assert record.exit_code == 128 + 9
    wait_for("the monitor's end", lambda: not rig.runtime.alive(run.state_dir))
    # Signalling a container that no longer runs is no error, just nothing done.
    assert not rig.runtime.kill(run.id, "SIGTERM")
    rig.runtime.delete(run.id)
    assert rig.status(run) is None
    rig.runtime.delete(run.id)  # again: nothing left, no error


def test_an_exit_of_its_own_is_recorded(rig: Rig) -> None:
    run = rig.launch("sh", "-c", "exit 3")
    if isinstance(rig.runtime, FakeRuntime):
        rig.runtime.exit(run.id, 3)
    record = wait_for("the exit record", lambda: rig.runtime.read_exit(run.state_dir))
    assert record.exit_code == 3
    assert not record.oom_killed


def test_pause_resume_and_a_live_memory_update(rig: Rig) -> None:
    run = rig.launch("sleep", "1000")
    rig.runtime.pause(run.id)
    assert rig.status(run) is RuncStatus.PAUSED
    rig.runtime.resume(run.id)
    assert rig.status(run) is RuncStatus.RUNNING
    rig.runtime.update_memory(run.id, Resources(memory="64M", memory_swap="-1"))
    assert rig.runtime.kill(run.id, "KILL")


def test_unknown_containers(rig: Rig) -> None:
    rig.runtime.delete("ct-unknown")
    rig.runtime.forget("ct-unknown", rig.base / "unknown-state")
    assert (rig.base / "unknown-state").is_dir()
    assert not rig.runtime.kill("ct-unknown", "SIGTERM")
    assert rig.runtime.read_exit(rig.base / "nowhere") is None
    assert not rig.runtime.alive(rig.base / "nowhere")


def test_forget_deletes_what_an_earlier_run_left(rig: Rig) -> None:
    run = rig.launch("sleep", "1000")
    assert rig.runtime.kill(run.id, "SIGKILL")
    wait_for("the exit record", lambda: rig.runtime.read_exit(run.state_dir))
    rig.runtime.forget(run.id, run.state_dir)
    assert rig.status(run) is None
    # The next run starts with no exit record and no live monitor of the last one.
    assert rig.runtime.read_exit(run.state_dir) is None
    assert not rig.runtime.alive(run.state_dir)
    assert list(run.state_dir.iterdir()) == []
