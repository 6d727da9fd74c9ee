"""The daemon's create+start path (#17 item 2): createWithConfig start:true over MQTT until
the 200 response, against `runc run -d` of the same bundle, interleaved (the order of the
two flips every round), with what the daemon spends on it. Needs root.

Usage: python3 bench/create_path.py [ROUNDS]   (default 20)

Run it with the interpreter of an installed ocirt (`pip install .` into a venv of
Debian's /usr/bin/python3), from outside the repository: the repository is appended to
the path only for the test harness, so `ocirt` comes from the install. The harness
(tests/integration/things/service_harness.py) starts a private mosquitto and the real
`ocirt daemon`; the busybox image is in the daemon's store beforehand. Host network on
both sides, so neither sets up a network. The broker sets TCP_NODELAY: with mosquitto's
default, the response, which follows the broker's PUBACK to the cloud client, waits for
that client's delayed ACK and no round trip can show under ~41 ms (a command answered at
once takes 43 ms then, against 1.7 ms with it). A cloud connector (Hono's, on Netty) sets
TCP_NODELAY itself.

Printed: medians of the round trip and of the baseline, the median of per-round ratios
(target <= 1.25x), the floor under the round trip (two more rows interleaved in each
round: the installed monitor launched on the same bundle from this process, which is
the daemon's own launch without its bookkeeping, and the round trip of a command the
daemon answers at once, a `stop` of a container that does not exist, i.e. MQTT and the
command path with no work), what of the 1.25x is left for the daemon's own work above
that floor, the daemon's CPU time (utime + stime, all its threads; a mean, as /proc
counts in 10 ms ticks) from the command until the response and until its events are all
out, and the fsyncs the daemon makes per create+start (counted with
`strace -f -e fsync,fdatasync` in a separate, untimed round).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))
sys.path.append(str(REPO / "tests" / "integration" / "things"))

from service_harness import IMAGE, Broker, Cloud, Service, build_layout  # noqa: E402

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]
RUNC = shutil.which("runc") or "runc"
CONFIG = {"cmd": SERVE, "networkMode": "host", "restartPolicy": {"type": "no"}}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def remove_cgroup_dirs(name: str) -> None:
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup", topdown=False):
        if name in dirnames:
            with contextlib.suppress(OSError):
                os.rmdir(Path(dirpath) / name)


def create_started(cloud: Cloud) -> tuple[str, float]:
    value = {"imageRef": IMAGE, "start": True, "config": CONFIG}
    t0 = time.perf_counter()
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    elapsed = time.perf_counter() - t0
    assert got.body["status"] == 200, got.body
    return str(got.body["value"]), elapsed


def remove(cloud: Cloud, cid: str) -> None:
    assert cloud.call("remove", f"Container:{cid}", True).body["status"] == 204


def raw_run(bundle: Path, runc_root: Path) -> float:
    raw_id = f"raw-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    subprocess.run(
        ["runc", "--root", str(runc_root), "run", "-d", "--bundle", str(bundle), raw_id],
        check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", raw_id],
                   check=True, capture_output=True)  # fmt: skip
    return elapsed


def monitor_run(bundle: Path, runc_root: Path, state_base: Path) -> float:
    """The installed monitor's launch of the bundle (`runc run -d` under it), as the
    daemon launches it, without anything else of a start."""
    from ocirt.runtime import monitor

    run_id = f"mon-{uuid.uuid4().hex[:8]}"
    options = monitor.MonitorOptions(
        container_id=run_id,
        bundle=bundle,
        state_dir=state_base / run_id,
        runtime_root=runc_root,
        log=monitor.LogOptions(path=state_base / run_id / "json.log"),
        runtime=RUNC,
        start=True,
    )
    t0 = time.perf_counter()
    monitor.launch(options)
    elapsed = time.perf_counter() - t0
    subprocess.run(["runc", "--root", str(runc_root), "delete", "-f", run_id],
                   check=True, capture_output=True)  # fmt: skip
    return elapsed


def answered_at_once(cloud: Cloud) -> float:
    """Round trip of a command with no work behind it: a stop of a missing container."""
    missing = f"Container:{uuid.uuid4()}"
    t0 = time.perf_counter()
    got = cloud.call("stop", missing, {})
    elapsed = time.perf_counter() - t0
    assert got.body["status"] == 404, got.body
    return elapsed


def count_fsyncs(service: Service, cloud: Cloud) -> int:
    """fsync/fdatasync calls of the daemon (all threads) during one create+start."""
    assert service.proc is not None
    out = service.tmp / "fsyncs.txt"
    tracer = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", str(out),
         "-p", str(service.proc.pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # strace attaches to every thread
        cid, _ = create_started(cloud)
        time.sleep(0.5)  # events after the response
    finally:
        tracer.terminate()
        tracer.wait(10)
    remove(cloud, cid)
    return sum(1 for line in out.read_text().splitlines() if "fsync(" in line)


def main(rounds: int) -> None:
    trip: list[float] = []
    raw: list[float] = []
    mon: list[float] = []
    bare: list[float] = []
    cpu_answer: list[float] = []
    cpu_all: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ocirt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(tmp / "rootfs")], check=True,
                       capture_output=True)  # fmt: skip
        layout = build_layout(tmp / "rootfs", tmp / "layout")
        broker = Broker(tmp, nodelay=True)
        broker.start()
        service = Service(tmp, broker.port, layout)
        service.cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
        service.extra_config = {"log": {"log_level": "INFO"}}
        cloud = None
        try:
            service.start()
            assert service.proc is not None
            pid = service.proc.pid
            cloud = Cloud(broker.port, f"bench:gw{uuid.uuid4().hex[:6]}")
            cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
            time.sleep(1.0)
            runc_root = tmp / "raw-runc"
            # A first container, not counted: the daemon's first create probes overlayfs.
            remove(cloud, create_started(cloud)[0])
            # The bundle the daemon wrote, for the baseline: taken from a stopped container.
            cid, _ = create_started(cloud)
            assert cloud.call("stop", f"Container:{cid}", {}).body["status"] == 204
            bundle = service.home / "containers" / cid / "bundle"
            state_base = tmp / "mon"
            for index in range(rounds):
                first_raw = index % 2 == 1
                if first_raw:
                    raw.append(raw_run(bundle, runc_root))
                    time.sleep(0.2)
                    mon.append(monitor_run(bundle, runc_root, state_base))
                    time.sleep(0.1)
                    bare.append(answered_at_once(cloud))
                time.sleep(0.2)
                c0 = cpu_seconds(pid)
                new, elapsed = create_started(cloud)
                c1 = cpu_seconds(pid)
                time.sleep(0.3)  # the twin events leave after the response
                c2 = cpu_seconds(pid)
                trip.append(elapsed)
                cpu_answer.append(c1 - c0)
                cpu_all.append(c2 - c0)
                remove(cloud, new)
                if not first_raw:
                    time.sleep(0.2)
                    bare.append(answered_at_once(cloud))
                    time.sleep(0.1)
                    mon.append(monitor_run(bundle, runc_root, state_base))
                    time.sleep(0.2)
                    raw.append(raw_run(bundle, runc_root))
            fsyncs = count_fsyncs(service, cloud)
            remove(cloud, cid)
        finally:
            if cloud is not None:
                cloud.close()
            service.cleanup()
            remove_cgroup_dirs(service.cgroup_parent)
            broker.stop()
    import ocirt

    where = "editable/source" if Path(ocirt.__file__).parent.parent == REPO else "installed"
    rt, base = statistics.median(trip), statistics.median(raw)
    paired = statistics.median(t / r for t, r in zip(trip, raw, strict=True))
    print(f"daemon: {sys.executable} (Python {sys.version.split()[0]}), ocirt {where}")
    print(f"rounds: {rounds} (interleaved, order flipped every round)")
    print(f"createWithConfig start:true round trip (median): {rt * 1000:.1f} ms")
    print(f"runc run -d of the same bundle (median):         {base * 1000:.1f} ms")
    print(f"median of per-round ratios: {paired:.2f}x (target <= 1.25x)")
    floor_mon, floor_bare = statistics.median(mon), statistics.median(bare)
    floor_paired = statistics.median((m + b) / r for m, b, r in zip(mon, bare, raw, strict=True))
    print(f"monitor launch of the same bundle (median):      {floor_mon * 1000:.1f} ms"
          f" ({floor_mon / base:.2f}x runc run -d)")  # fmt: skip
    print(f"round trip of a command answered at once (median): {floor_bare * 1000:.1f} ms")
    print(f"floor (monitor launch + that round trip), median of per-round ratios: "
          f"{floor_paired:.2f}x runc run -d")  # fmt: skip
    left = 1.25 * base - floor_mon - floor_bare
    print(f"left at 1.25x for the daemon's own create+start work: {left * 1000:.1f} ms;"
          f" it takes {(rt - floor_mon - floor_bare) * 1000:.1f} ms")  # fmt: skip
    # /proc counts CPU time in clock ticks (10 ms): the mean over the rounds, not a median.
    print(
        f"daemon CPU per create+start until the response (mean): "
        f"{statistics.fmean(cpu_answer) * 1000:.1f} ms"
    )
    print(
        f"daemon CPU per create+start incl. its events (mean):   "
        f"{statistics.fmean(cpu_all) * 1000:.1f} ms"
    )
    print(f"daemon fsyncs per create+start: {fsyncs}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
