"""The runc driver against real runc: every verb, and errors that carry runc's stderr."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ocirt.errors import NotFound, RuncError
from ocirt.runtime.runc import MemoryUpdate, Runc, RuncStatus
from tests.support.runc import RuncForTests

pytestmark = pytest.mark.integration


def make_bundle(tmp_path: Path, rootfs: Path, args: list[str]) -> Path:
    """A bundle from `runc spec`'s template, with our rootfs and args and no terminal."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": False}
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["linux"]["cgroupsPath"] = f"ocirt-test-{uuid.uuid4().hex[:12]}"
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def wait_status(runc: Runc, cid: str, status: RuncStatus) -> None:
    for _ in range(200):
        if runc.state(cid).status is status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{cid} never reached {status}: {runc.state(cid)}")


def cid() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_lifecycle_verbs(runc_root: Path, rootfs_copy: Path, tmp_path: Path) -> None:
    runc = RuncForTests(runc_root)
    bundle = make_bundle(tmp_path, rootfs_copy, ["/bin/sleep", "300"])
    name = cid()
    pid_file = tmp_path / "pid"
    runc.create(name, bundle, pid_file=pid_file)
    state = runc.state(name)
    assert state.status is RuncStatus.CREATED
    assert int(pid_file.read_text()) == state.pid > 0
    runc.start(name)
    assert runc.state(name).status is RuncStatus.RUNNING
    runc.pause(name)
    assert runc.state(name).status is RuncStatus.PAUSED
    runc.resume(name)
    assert runc.state(name).status is RuncStatus.RUNNING
    assert [s.id for s in runc.list()] == [name]
    runc.update_memory(name, MemoryUpdate(limit=64 << 20, swap=64 << 20))
    stats = runc.events_stats(name)
    assert stats["memory"]["usage"]["limit"] == 64 << 20
    result = runc.exec(name, ["/bin/sh", "-c", "echo $((6*7))"])
    assert (result.returncode, result.stdout) == (0, "42\n")
    runc.kill(name, "KILL")
    wait_status(runc, name, RuncStatus.STOPPED)
    runc.delete(name)
    assert runc.list() == []


def test_stdio_pass_through(runc_root: Path, rootfs_copy: Path, tmp_path: Path) -> None:
    runc = RuncForTests(runc_root)
    bundle = make_bundle(tmp_path, rootfs_copy, ["/bin/sh", "-c", "echo out; echo err >&2"])
    name = cid()
    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as fout, err.open("wb") as ferr:
        runc.create(name, bundle, stdout=fout.fileno(), stderr=ferr.fileno())
    runc.start(name)
    wait_status(runc, name, RuncStatus.STOPPED)
    assert out.read_text() == "out\n"
    assert err.read_text() == "err\n"
    runc.delete(name)


def test_kill_by_number_and_force_delete(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path
) -> None:
    runc = RuncForTests(runc_root)
    bundle = make_bundle(tmp_path, rootfs_copy, ["/bin/sleep", "300"])
    name = cid()
    runc.create(name, bundle)
    runc.start(name)
    with pytest.raises(RuncError):
        runc.delete(name)  # running, no force
    runc.kill(name, 19)  # SIGSTOP by number: the container stays
    assert runc.state(name).status is RuncStatus.RUNNING
    runc.delete(name, force=True)
    with pytest.raises(NotFound):
        runc.state(name)


def test_create_failure_carries_runc_stderr(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path
) -> None:
    runc = RuncForTests(runc_root)
    bundle = make_bundle(tmp_path, rootfs_copy, ["/no/such/binary"])
    config = json.loads((bundle / "config.json").read_text())
    config["root"]["path"] = str(tmp_path / "missing-rootfs")
    (bundle / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuncError) as excinfo:
        runc.create(cid(), bundle)
    assert "missing-rootfs" in str(excinfo.value) or "no such file" in str(excinfo.value).lower()
    assert excinfo.value.stderr


def test_invalid_signal_and_missing_binary(runc_root: Path) -> None:
    with pytest.raises(RuncError, match="invalid signal"):
        RuncForTests(runc_root).kill("x", "NOPE")
    with pytest.raises(RuncError, match="not found"):
        RuncForTests(runc_root, binary="/nonexistent/runc").list()


def test_states_from_runc_files_agree_with_runc_list(
    runc_root: Path, rootfs_copy: Path, tmp_path: Path
) -> None:
    runc = RuncForTests(runc_root)
    bundle = make_bundle(tmp_path, rootfs_copy, ["/bin/sleep", "300"])
    name = cid()
    runc.create(name, bundle, pid_file=tmp_path / "pid")
    try:
        seen = []
        for step in (None, runc.start, runc.pause, runc.resume):
            if step is not None:
                step(name)
            listed, read = runc.list(), runc.states()
            assert read == listed
            seen.append(read[0].status)
        assert seen == [
            RuncStatus.CREATED,
            RuncStatus.RUNNING,
            RuncStatus.PAUSED,
            RuncStatus.RUNNING,
        ]
        runc.kill(name, "KILL")
        wait_status(runc, name, RuncStatus.STOPPED)
        assert runc.states() == runc.list()
        assert runc.states()[0].pid == 0
    finally:
        runc.delete(name, force=True)
    assert runc.states() == runc.list() == []
