#!/usr/bin/env python3
"""A burst of 30 create+start right after a fresh start, against 30 sequential
create+start of the same image (baseline, same run). Needs root.

Usage: python3 bench/create_burst.py [ROUNDS] [COUNT]   (defaults 3 and 30)

Drives the manager in-process (not the daemon: the MQTT and socket layers add the same
cost to both sides), with the daemon's rootfs provider over a real image store
(`ImageRootfs` over `ImageService`: overlay snapshots), host network, busybox split into
3 layers and loaded from an OCI layout. Each round starts from a fresh manager and a
fresh image service (overlay not probed yet, as after a daemon start) and times until
every container is RUNNING: the burst runs COUNT threads that each create and start one
container (createWithConfig with start: true), the baseline does the same one after the
other. Rounds alternate which side goes first. Every container must be RUNNING on an
overlay mount (/proc/self/mountinfo), else the script fails. Medians are printed.
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType

from ocirt.config.model import ContainerConfig, NetworkMode, RestartPolicy, RestartPolicyType
from ocirt.daemon.adapters import ImageRootfs
from ocirt.image.service import ImageService
from ocirt.manager.manager import Manager, ManagerSettings
from ocirt.manager.ports import HostNetwork
from ocirt.runtime.hostfacts import read_host_facts

REPO = Path(__file__).resolve().parents[1]
IMAGE = "localhost/bench/busybox:burst"
CONFIG = ContainerConfig(
    network_mode=NetworkMode.HOST,
    cmd=("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"),
    restart_policy=RestartPolicy(RestartPolicyType.NO),
)


def load_mkimage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkimage", REPO / "hack" / "mkimage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mkimage"] = module
    spec.loader.exec_module(module)
    return module


def overlay_mounts_under(root: Path) -> set[str]:
    out = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(f"{root}/") and line.split(" - ")[1].split()[0] == "overlay":
            out.add(point)
    return out


def one_round(base: Path, layout: Path, count: int, burst: bool) -> float:
    """Seconds until ``count`` containers are RUNNING, from a fresh manager."""
    home = base / uuid.uuid4().hex[:6]
    ImageService(home).load(layout, name=IMAGE)  # the image is on the device already
    images = ImageService(home)  # what a daemon start makes: overlay not probed yet
    settings = ManagerSettings(home_dir=home, exec_root=base / f"x{home.name}")
    mgr = Manager(settings, ImageRootfs(images), HostNetwork(), read_host_facts())
    mgr.recover()
    ids: list[str] = []
    errors: list[BaseException] = []

    def create_and_start() -> None:
        try:
            view = mgr.create(IMAGE, CONFIG)
            ids.append(view.id)
            mgr.start(view.id)
        except BaseException as exc:
            errors.append(exc)

    try:
        t0 = time.perf_counter()
        if burst:
            threads = [threading.Thread(target=create_and_start) for _ in range(count)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            for _ in range(count):
                create_and_start()
        elapsed = time.perf_counter() - t0
        if errors:
            raise SystemExit(f"{len(errors)} of {count} failed, first: {errors[0]!r}")
        states = [mgr.get(cid).state.status.name for cid in ids]
        if states != ["RUNNING"] * count:
            raise SystemExit(f"not all RUNNING: {states}")
        rootfs = {str(images.store.root / "mounts" / cid / "rootfs") for cid in ids}
        if not rootfs <= overlay_mounts_under(home):
            raise SystemExit("some containers did not get an overlay rootfs")
        return elapsed
    finally:
        for cid in ids:
            try:
                mgr.remove(cid, force=True)
            except Exception as exc:  # keep cleaning up the others
                print(f"cleanup of {cid}: {exc}", file=sys.stderr)
        mgr.close()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    mkimage = load_mkimage()
    base = Path(f"/run/ob-{uuid.uuid4().hex[:6]}")
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    results: dict[bool, list[float]] = {True: [], False: []}
    try:
        rootfs = work / "rootfs"
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
        layout = work / "layout"
        desc = mkimage.write_image(layout, mkimage.split_rootfs(rootfs, 3), config={})
        mkimage.write_index(layout, "burst", [desc], nested=False)
        for index in range(rounds):
            order = (True, False) if index % 2 == 0 else (False, True)
            for burst in order:
                results[burst].append(one_round(base, layout, count, burst))
    finally:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(f"{base}/"):
                subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    burst = statistics.median(results[True])
    sequential = statistics.median(results[False])
    print(f"rounds: {rounds}, {count} containers each (medians), all RUNNING on overlay")
    print(f"{count} sequential create+start (baseline): {sequential:6.2f} s")
    print(f"{count} concurrent create+start (burst):    {burst:6.2f} s ({burst / sequential:.2f}x)")


if __name__ == "__main__":
    main()
