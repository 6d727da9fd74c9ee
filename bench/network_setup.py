#!/usr/bin/env python3
"""What bridge networking adds to create+start of a container, against host mode.

Same run, same busybox bundle: N containers are each created and started by runc (a) in host
mode (files only) and (b) on a private bridge (netns, veth, address, route, one published
TCP port with its DNAT rule and reservation). Prints medians; the figure is (b) - (a).
Everything made is removed at the end. Run as root:
    python3 bench/network_setup.py [-n 20] [--backend iptables|nftables]
It measures the ocirt its interpreter imports; a device's install is `pip install .`:
    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/network_setup.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from ipaddress import IPv4Network
from pathlib import Path

import benchlib

from ocirt.config.model import PortMapping
from ocirt.network.bridge import Attachment, BridgeNetwork
from ocirt.network.firewall import Backend
from ocirt.network.netlink import Netlink
from ocirt.network.settings import BridgeOptions
from ocirt.runtime.runc import Runc

REPO = benchlib.REPO


def free_subnet() -> IPv4Network:
    nl = Netlink()
    try:
        routed = [r.dst for r in nl.host_routes() if r.dst.prefixlen > 0]
    finally:
        nl.close()
    for net in IPv4Network("10.231.0.0/16").subnets(new_prefix=24):
        if not any(net.overlaps(r) for r in routed):
            return net
    raise SystemExit("no free 10.231.x.0/24")


def bundle(dest: Path, rootfs: Path, attachment: Attachment) -> None:
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if attachment.netns_path is not None:
        namespaces.append({"type": "network", "path": str(attachment.netns_path)})
    f = attachment.files
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"}] + [
        {"destination": d, "type": "bind", "source": str(s), "options": ["rbind", "rprivate"]}
        for s, d in (
            (f.hosts, "/etc/hosts"),
            (f.resolv_conf, "/etc/resolv.conf"),
            (f.hostname, "/etc/hostname"),
        )
    ]
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "args": ["sleep", "600"],
            "cwd": "/",
            "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs)},
        "hostname": "bench",
        "mounts": mounts,
        "linux": {"namespaces": namespaces},
    }
    (dest / "config.json").write_text(json.dumps(config))


def runc_create_start(runc: Runc, cid: str, bundle_dir: Path) -> None:
    """`runc create` (stdio to /dev/null, runc's errors to a file) then `runc start`:
    how a container was started by hand before the monitor's `runc run -d`."""
    base = ["runc", "--root", str(runc.root)]
    with tempfile.TemporaryFile() as errors:
        done = subprocess.run(
            [*base, "create", "--bundle", str(bundle_dir), cid],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors.fileno(),
            check=False,
        )
        if done.returncode:
            errors.seek(0)
            raise RuntimeError(f"runc create failed: {errors.read().decode(errors='replace')}")
    subprocess.run([*base, "start", cid], check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    parser.add_argument("--backend", choices=[b.value for b in Backend], default=None)
    args = parser.parse_args()
    print(benchlib.describe())
    backend = Backend(args.backend) if args.backend else None

    work = Path(tempfile.mkdtemp(prefix="ocirt-netbench-"))
    rootfs = work / "rootfs"
    subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
    runc = Runc(work / "runc")
    subnet = free_subnet()
    name = f"ocb{uuid.uuid4().hex[:6]}"
    net = BridgeNetwork(
        BridgeOptions(name=name, ip4=f"{subnet.network_address + 1}/24"), work / "state", backend
    )
    net.setup()
    fw = net._fw()
    timings: dict[str, list[float]] = {"host": [], "bridge": [], "attach": []}
    try:
        for i in range(args.n):
            for mode in ("host", "bridge"):
                cid = f"bench-{mode}-{i}"
                b = work / cid
                b.mkdir()
                t0 = time.perf_counter()
                if mode == "host":
                    att = net.attach_host(cid, (), b / "files")
                else:
                    att = net.attach(
                        cid, "bench", "", (PortMapping(80, 21000, 21999),), (), b / "files"
                    )
                t1 = time.perf_counter()
                bundle(b, rootfs, att)  # not a network cost: excluded from both
                t2 = time.perf_counter()
                runc_create_start(runc, cid, b)
                t3 = time.perf_counter()
                timings[mode].append((t1 - t0) + (t3 - t2))
                if mode == "bridge":
                    timings["attach"].append(t1 - t0)
                runc.delete(cid, force=True)
                net.detach(cid)
    finally:
        for state in runc.list():
            runc.delete(state.id, force=True)
        net.teardown()
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    print(f"backend: {fw.backend.value if fw else 'none'}; n={args.n}; {benchlib.loadavg()}")
    print(f"create+start, host mode   median {med['host']:.1f} ms")
    print(f"create+start, bridge mode median {med['bridge']:.1f} ms")
    print(
        f"network set-up added      median {med['bridge'] - med['host']:.1f} ms "
        f"(attach alone: median {med['attach']:.1f} ms; target <= 15 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
