"""Create+start of a local busybox container until RUNNING is recorded, against a raw
`runc run -d` of the same bundle and against containerd's `ctr run -d` of the same rootfs
directory (baselines, same run, interleaved). Needs root.

Usage: python3 bench/lifecycle_start.py [ROUNDS]   (default 30)

It measures the ocirt its interpreter imports; a device's install is `pip install .`:
    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/lifecycle_start.py

Each round the manager creates and starts one host-network busybox container and the
clock stops when `start` returns, i.e. when RUNNING is persisted; the container is
then removed. The rootfs comes from DirectoryRootfs, shared (as an image snapshot
mount would be: no per-container copy) and, as a second variant, copied per
container. The baseline runs `runc run -d` on that very bundle (config.json the
manager wrote, same rootfs) once the managed container is stopped, with stdio on
/dev/null and no monitor, no log, no store. containerd (Debian's 1.6, a private instance:
bench/benchlib.py) runs `ctr run -d --net-host --rootfs <the same rootfs dir>` in each
round as well: what Kanto's create+start costs on the same machine (ctr's own start-up
included, as the CLI's is in bench/cli_latency.py). Medians are printed. The machine's load
moves every figure by a few ms from run to run: compare ratios of the same run, and
run it several times.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import benchlib

from ocirt.config.model import ContainerConfig, NetworkMode, RestartPolicy, RestartPolicyType
from ocirt.daemon.adapters import DirectoryRootfs, HostNetwork
from ocirt.manager.manager import Manager, ManagerSettings
from ocirt.runtime.hostfacts import read_host_facts
from ocirt.runtime.monitored import MonitoredRunc
from ocirt.store.containers import ContainerStore

REPO = benchlib.REPO
CONFIG = ContainerConfig(
    network_mode=NetworkMode.HOST,
    # Exits on SIGTERM, so the stop between the two measurements is quick.
    cmd=("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"),
    restart_policy=RestartPolicy(RestartPolicyType.NO),
)


def measure(
    mgr: Manager,
    home: Path,
    runc_root: Path,
    rounds: int,
    ctd: benchlib.Containerd | None,
    rootfs: Path,
) -> tuple[list[float], list[float], list[float], list[float]]:
    """(create+start, start, raw runc run -d, ctr run -d) seconds per round; one warm-up
    dropped."""
    total: list[float] = []
    start: list[float] = []
    raw: list[float] = []
    ctr: list[float] = []
    for index in range(rounds + 1):
        t0 = time.perf_counter()
        view = mgr.create("busybox", CONFIG)
        t1 = time.perf_counter()
        mgr.start(view.id)
        t2 = time.perf_counter()
        # The baseline runs the very bundle the manager wrote, once the managed container
        # is stopped (same cgroup path, network files, rootfs).
        mgr.stop(view.id)
        bundle = home / "containers" / view.id / "bundle"
        raw_id = f"raw-{uuid.uuid4().hex[:8]}"
        t3 = time.perf_counter()
        subprocess.run(
            ["runc", "--root", str(runc_root), "run", "-d", "--bundle", str(bundle), raw_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        t4 = time.perf_counter()
        subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", raw_id], check=True)
        mgr.remove(view.id, force=True)
        if ctd is not None:
            ctr_id = f"ctr-{uuid.uuid4().hex[:8]}"
            elapsed = ctd.run_detached("", ctr_id, rootfs=rootfs)
            ctd.remove(ctr_id)
            if index:
                ctr.append(elapsed)
        if index:
            total.append(t2 - t0)
            start.append(t2 - t1)
            raw.append(t4 - t3)
    return total, start, raw, ctr


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(benchlib.describe())
    base = Path(f"/run/ocirt-bench-{uuid.uuid4().hex[:8]}")
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    rootfs = work / "rootfs"
    subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
    runc_root = base / "raw"
    results = {}
    try:
        with benchlib.containerd(base / "containerd") as ctd:
            for copy in (False, True):
                settings = ManagerSettings(home_dir=base / f"home-{copy}", exec_root=base / "exec")
                provider = DirectoryRootfs(rootfs, copy=copy)
                mgr = Manager(
                    settings,
                    provider,
                    HostNetwork(),
                    read_host_facts(),
                    runtime=MonitoredRunc(settings.runc_root, notify_socket=settings.notify_socket),
                    store=ContainerStore(settings.home_dir),
                )
                mgr.recover()
                try:
                    # containerd's rounds go with the shared-rootfs variant only.
                    results[copy] = measure(
                        mgr, settings.home_dir, runc_root, rounds, None if copy else ctd, rootfs
                    )
                finally:
                    mgr.close()
    finally:
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True
        ).stdout.split()
        for cid in listed:
            subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", cid], check=False)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    total, start, raw, ctr = results[False]
    baseline = ms(raw + results[True][2])
    print(f"{benchlib.loadavg()}; rounds: {rounds} per variant (medians)")
    print(f"runc run -d of the same bundle (baseline): {baseline:7.1f} ms")
    print(
        f"manager start (monitor + runc run -d, RUNNING persisted): "
        f"{ms(start):7.1f} ms ({ms(start) / baseline:.2f}x)"
    )
    print(
        f"manager create+start, shared rootfs dir: {ms(total):7.1f} ms "
        f"({ms(total) / baseline:.2f}x)"
    )
    # Each round measures both sides within ~0.1 s, so the ratio of a round is little
    # moved by the load of a shared machine, which drifts over seconds.
    paired = statistics.median(t / r for t, r in zip(total, raw, strict=True))
    print(f"manager create+start / runc run -d, median of per-round ratios: {paired:.2f}x")
    if ctr:
        print(
            f"ctr run -d --net-host --rootfs (containerd {benchlib.containerd_version()}): "
            f"{ms(ctr):7.1f} ms"
        )
        paired = statistics.median(t / c for t, c in zip(total, ctr, strict=True))
        print(f"manager create+start / ctr run -d, median of per-round ratios: {paired:.2f}x")
    copied = ms(results[True][0])
    print(
        f"manager create+start, rootfs copied per container: {copied:7.1f} ms "
        f"({copied / baseline:.2f}x)"
    )


if __name__ == "__main__":
    main()
