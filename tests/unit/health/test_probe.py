"""RuncProbeRunner against a stand-in for runc (no root): a script that takes runc's
`exec` arguments and runs the probe on the host the way `runc exec` does in a container:
a new session, its host pid written to --pid-file (temp + rename), the stand-in waiting
for it as its parent. The real runc is exercised by tests/integration/things/
test_health_e2e.py."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirt.health.probe import MAX_OUTPUT_BYTES, ProbeResult, RuncProbeRunner

FAKE_RUNC = """\
import os, subprocess, sys
args = sys.argv[1:]
assert args[:3] == ["--root", {root!r}, "exec"], args
args = args[3:]
pid_file = None
if args[0] == "--pid-file":
    pid_file, args = args[1], args[2:]
container_id, argv = args[0], args[1:]
if container_id == "stuck":  # a runc that never gets the probe started
    import time
    time.sleep(1000)
assert container_id == "ctr", container_id
child = subprocess.Popen(argv, start_new_session=True)
if pid_file:
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(child.pid))
    os.rename(pid_file + ".tmp", pid_file)
sys.exit(child.wait())
"""


@pytest.fixture
def runner(tmp_path: Path) -> RuncProbeRunner:
    root = tmp_path / "root"
    script = tmp_path / "fake-runc"
    script.write_text(f"#!{sys.executable}\n" + FAKE_RUNC.format(root=str(root)))
    script.chmod(0o755)
    return RuncProbeRunner(root, str(script), grace=0.5)


def test_exit_code_and_output(runner: RuncProbeRunner) -> None:
    result = runner.run("ctr", ["sh", "-c", "echo out; echo err >&2; exit 3"], 30.0)
    assert result == ProbeResult(3, "out\nerr\n")


def test_a_missing_runtime_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        RuncProbeRunner(tmp_path, str(tmp_path / "no-runc")).run("ctr", ["true"], 5.0)


def test_a_hung_probe_times_out(runner: RuncProbeRunner) -> None:
    result = runner.run("ctr", ["sleep", "1000"], 0.5)
    assert (result.exit_code, result.timed_out) == (-1, True)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_timeout_kills_the_probes_whole_process_group(
    runner: RuncProbeRunner, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # A shell that waits for its child: killing only the shell would leave the sleep.
    script = f"sleep 1000 & echo $$ $! > {pids}.tmp; mv {pids}.tmp {pids}; wait"
    result = runner.run("ctr", ["sh", "-c", script], 2.0)
    assert result.timed_out
    shell, sleep = (int(p) for p in pids.read_text().split())
    wait_for("the probe's processes to end", lambda: not alive(shell) and not alive(sleep))


def test_output_is_bounded_and_drained(runner: RuncProbeRunner) -> None:
    chatty = "head -c 1000000 /dev/zero | tr '\\0' x; exit 4"
    result = runner.run("ctr", ["sh", "-c", chatty], 60.0)
    assert (result.exit_code, result.output) == (4, "x" * MAX_OUTPUT_BYTES)


def test_a_runtime_that_never_starts_the_probe_is_killed(runner: RuncProbeRunner) -> None:
    result = runner.run("stuck", ["true"], 0.2)
    assert (result.exit_code, result.timed_out) == (-1, True)
