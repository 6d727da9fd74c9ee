"""RSS of the manager process with 10 running containers (target <= 25 MB). Needs root.

Usage: python3 bench/lifecycle_rss.py [CONTAINERS]

It measures the ocirt its interpreter imports (the manager runs in `python3 -P`, never
from the source tree); a device's install is `pip install .`:
    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/lifecycle_rss.py

The manager runs in its own process (as the daemon would), with the busybox rootfs
shared through DirectoryRootfs and host networking. Baselines in the same run: a bare
`python3` and the manager process with no container. VmRSS is read from /proc; the
monitors (one small C process per container) are reported apart, as they are not the
manager's memory. Baseline for the whole: containerd (Debian's 1.6, a private instance,
bench/benchlib.py) with as many running containers (`ctr run -d --net-host --rootfs` of
the same rootfs dir): containerd plus one containerd-shim-runc-v2 per container, the
processes that stay resident for Kanto.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import benchlib

REPO = benchlib.REPO

CHILD = r"""
import json, sys, time
from pathlib import Path
from ocirt.config.model import ContainerConfig, NetworkMode, RestartPolicy, RestartPolicyType
from ocirt.manager.manager import Manager, ManagerSettings
from ocirt.daemon.adapters import DirectoryRootfs, HostNetwork
from ocirt.runtime.hostfacts import read_host_facts
from ocirt.runtime.monitored import MonitoredRunc
from ocirt.store.containers import ContainerStore

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

base, rootfs, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
settings = ManagerSettings(home_dir=base / "home", exec_root=base / "exec")
mgr = Manager(
    settings,
    DirectoryRootfs(rootfs, copy=False),
    HostNetwork(),
    read_host_facts(),
    runtime=MonitoredRunc(settings.runc_root, notify_socket=settings.notify_socket),
    store=ContainerStore(settings.home_dir),
)
mgr.recover()
empty = rss()
config = ContainerConfig(
    network_mode=NetworkMode.HOST,
    cmd=("sh", "-c", "trap 'exit 0' TERM; while true; do echo tick; sleep 1; done"),
    restart_policy=RestartPolicy(RestartPolicyType.UNLESS_STOPPED),
)
ids = []
for _ in range(count):
    view = mgr.create("busybox", config)
    mgr.start(view.id)
    ids.append(view.id)
for cid in ids:
    mgr.get(cid)
    list(mgr.logs(cid, tail=10))
time.sleep(2)  # let exit listener and workers settle
running = sum(1 for v in mgr.list() if v.state.status.name == "RUNNING")
monitors = [str(base / "home" / "containers" / cid / "monitor") for cid in ids]
print(json.dumps({"empty_kb": empty, "loaded_kb": rss(), "running": running,
                  "monitors": monitors}), flush=True)
sys.stdin.readline()
for cid in ids:
    mgr.remove(cid, force=True)
mgr.close()
"""


vmrss_kb = benchlib.vmrss_kb


def containerd_rss(base: Path, rootfs: Path, count: int) -> tuple[int, list[int]] | None:
    """(containerd KiB, shims KiB) with `count` running containers, or None."""
    with benchlib.containerd(base) as ctd:
        if ctd is None:
            return None
        for i in range(count):
            ctd.run_detached("", f"rss{i}", rootfs=rootfs)
        time.sleep(2)
        assert ctd.proc is not None
        pids = ctd.pids()
        if len(pids) != count + 1:
            raise RuntimeError(f"expected {count} shims, found {len(pids) - 1}")
        return vmrss_kb(ctd.proc.pid), [vmrss_kb(p) for p in pids[1:]]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(benchlib.describe())
    base = Path(f"/run/ocirt-bench-{uuid.uuid4().hex[:8]}")
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    rootfs = work / "rootfs"
    subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
    bare = subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            "from pathlib import Path; print(Path('/proc/self/status')"
            ".read_text().split('VmRSS:')[1].split()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", CHILD, str(base), str(rootfs), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        report = json.loads(proc.stdout.readline())
        outside = vmrss_kb(proc.pid)
        monitors = []
        for state_dir in report["monitors"]:
            handle = json.loads((Path(state_dir) / "handle.json").read_text())
            monitors.append(vmrss_kb(handle["monitorPid"]))
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(120)
        baseline = containerd_rss(base / "containerd", rootfs, count)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 9)
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"bare python3:                         {int(bare.stdout) / 1024:6.1f} MB")
    print(f"manager, no container:                {report['empty_kb'] / 1024:6.1f} MB")
    print(
        f"manager, {report['running']} running containers:       "
        f"{outside / 1024:6.1f} MB (target <= 25 MB)"
    )
    print(f"monitors: {len(monitors)} x {sum(monitors) / len(monitors) / 1024:.2f} MB average")
    print(f"manager + monitors:                   {(outside + sum(monitors)) / 1024:6.1f} MB")
    if baseline is not None:
        daemon_kb, shims = baseline
        print(
            f"containerd {benchlib.containerd_version()}, {len(shims)} running containers: "
            f"{daemon_kb / 1024:.1f} MB; shims: {len(shims)} x "
            f"{sum(shims) / len(shims) / 1024:.2f} MB average; "
            f"containerd + shims {(daemon_kb + sum(shims)) / 1024:.1f} MB"
        )
    print(benchlib.loadavg())


if __name__ == "__main__":
    main()
