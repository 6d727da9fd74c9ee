"""createWithConfig start:true over MQTT, until the 200 response, against a raw
`runc run -d` of the same bundle (baseline, same run); daemon RSS idle and connected.
Needs root.

Usage: python3 bench/things_roundtrip.py [ROUNDS]

It measures the ocirt its interpreter imports (started inside the source tree, it moves to
/ first: the daemon is started with `python -m`, which puts the working directory first on
its path); a device's install is `pip install .`:
    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo paho-mqtt pytest
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/things_roundtrip.py
(paho-mqtt and pytest for the cloud client and tests/integration/things/service_harness.py)

A private mosquitto on 127.0.0.1 (default settings) and the real `ocirt daemon`
(subprocess) are started; the busybox image is loaded offline into the daemon's store
beforehand ("an image already present"). Each round a cloud-side paho client sends the
createWithConfig message and the clock stops at the 200 response (sent after create and
start). The container is host-network, so the bundle the daemon wrote needs nothing that
a stop releases: the container is stopped and `runc run -d` runs that very bundle (the
baseline; it has the host's network too, so neither side sets up a network); then both
are removed. Medians over ROUNDS (one warm-up round dropped).

The cloud client sets TCP_NODELAY, as a Go connector does by default: paho-python does
not, and then each command it sends after acknowledging a twin message waits ~40 ms for
the broker's delayed ACK (Nagle), which says nothing about the device. The same round
trip with Nagle left on is printed too. The broker sets TCP_NODELAY as well
(`set_tcp_nodelay`): otherwise the answer, which follows the broker's PUBACK to the cloud
client, waits for that client's delayed ACK, and no round trip shows under ~41 ms
(bench/create_path.py). A bridge-network round (own netns, veth, /etc
files, same image) is printed beside it, with the difference: the network set-up.

RSS is VmRSS of the daemon process: once bootstrapped with no container ("idle,
connected"), and with 5 running containers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import benchlib

REPO = benchlib.REPO
# The repository last: its tests package (the harness needs tests.support), never its
# ocirt ahead of the installed one.
sys.path.append(str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration" / "things"))

from service_harness import IMAGE, Broker, Cloud, Service, build_layout  # noqa: E402

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]
CONFIG = {"cmd": SERVE, "networkMode": "host", "restartPolicy": {"type": "no"}}
BRIDGE = {**CONFIG, "networkMode": "bridge"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def nodelay(cloud: Cloud, on: bool) -> None:
    sock = cloud.client.socket()
    assert isinstance(sock, socket.socket)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(on))


def remove_cgroup_dirs(name: str) -> None:
    """Remove the (empty) cgroup directories called `name` the daemon's containers used."""
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup", topdown=False):
        if name in dirnames:
            with contextlib.suppress(OSError):
                os.rmdir(Path(dirpath) / name)


def create_started(cloud: Cloud, config: dict[str, object]) -> tuple[str, float]:
    """(container id, seconds until the 200 response)."""
    value = {"imageRef": IMAGE, "start": True, "config": config}
    t0 = time.perf_counter()
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    elapsed = time.perf_counter() - t0
    assert got.body["status"] == 200, got.body
    return str(got.body["value"]), elapsed


def remove(cloud: Cloud, cid: str) -> None:
    assert cloud.call("remove", f"Container:{cid}", True).body["status"] == 204


def main(rounds: int) -> None:
    measured = benchlib.describe()
    with tempfile.TemporaryDirectory(prefix="ocirt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(tmp / "rootfs")], check=True,
                       capture_output=True)  # fmt: skip
        layout = build_layout(tmp / "rootfs", tmp / "layout")
        broker = Broker(tmp, nodelay=True)
        broker.start()
        service = Service(tmp, broker.port, layout)
        service.cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
        cloud = None
        try:
            service.extra_config = {"log": {"log_level": "INFO"}}
            service.start()
            cloud = Cloud(broker.port, f"bench:gw{uuid.uuid4().hex[:6]}")
            cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
            assert service.proc is not None
            time.sleep(1.0)  # let start-up garbage settle before reading RSS
            idle = rss_mb(service.proc.pid)
            runc_root = tmp / "raw-runc"
            round_trip: list[float] = []
            nagle: list[float] = []
            bridge: list[float] = []
            raw: list[float] = []
            for index in range(rounds + 1):
                nodelay(cloud, False)
                cid, elapsed = create_started(cloud, CONFIG)
                remove(cloud, cid)
                nodelay(cloud, True)
                if index:
                    nagle.append(elapsed)
                cid, elapsed = create_started(cloud, BRIDGE)
                remove(cloud, cid)
                if index:
                    bridge.append(elapsed)
                cid, elapsed = create_started(cloud, CONFIG)
                assert cloud.call("stop", f"Container:{cid}", {}).body["status"] == 204
                bundle = service.home / "containers" / cid / "bundle"
                raw_id = f"raw-{uuid.uuid4().hex[:8]}"
                t2 = time.perf_counter()
                subprocess.run(
                    ["runc", "--root", str(runc_root), "run", "-d", "--bundle", str(bundle),
                     raw_id],
                    check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
                t3 = time.perf_counter()
                subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", raw_id],
                               check=True, capture_output=True)  # fmt: skip
                remove(cloud, cid)
                if index:
                    round_trip.append(elapsed)
                    raw.append(t3 - t2)
            ids = []
            for _ in range(5):
                value = {"imageRef": IMAGE, "start": True, "config": CONFIG}
                ids.append(cloud.call("createWithConfig", "ContainerFactory", value).body["value"])
            time.sleep(1.0)
            busy = rss_mb(service.proc.pid)
            for cid in ids:
                cloud.call("remove", f"Container:{cid}", True)
        finally:
            if cloud is not None:
                cloud.close()
            service.cleanup()
            remove_cgroup_dirs(service.cgroup_parent)
            broker.stop()
    rt, base = statistics.median(round_trip), statistics.median(raw)
    slow, bridged = statistics.median(nagle), statistics.median(bridge)
    # The daemon runs on this interpreter and this ocirt: a device's install is
    # `pip install .` (an editable dev install adds setuptools' import hook, ~3 MB).
    print(measured)
    print(f"{benchlib.loadavg()}; rounds: {rounds}, interleaved")
    print(f"createWithConfig start:true round trip (median): {rt * 1000:.1f} ms")
    print(f"raw runc run -d of the same bundle (median):     {base * 1000:.1f} ms")
    print(f"ratio: {rt / base:.2f}x; target <= 1.5x + 10 ms = {(1.5 * base + 0.010) * 1000:.1f} ms")
    # Both sides of a round run within ~0.2 s: little moved by a shared machine's load.
    paired = statistics.median(t / r for t, r in zip(round_trip, raw, strict=True))
    print(f"median of per-round ratios: {paired:.2f}x (target of #17: <= 1.25x)")
    print(f"same, cloud client with Nagle on (paho default):  {slow * 1000:.1f} ms")
    print(
        f"same in bridge mode: {bridged * 1000:.1f} ms "
        f"(network set-up {(bridged - rt) * 1000:.1f} ms of it)"
    )
    print(f"daemon RSS idle, connected: {idle:.1f} MB (target <= 25 MB)")
    print(f"daemon RSS with 5 running containers: {busy:.1f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
