"""What the Metrics feature costs the daemon: CPU and RSS with a 1 s request over 20
running containers, against the same daemon with metrics off, in the same run. Needs root.

Usage: python3 bench/metrics_cost.py [ROUNDS] [WINDOW_SECONDS]

A private mosquitto and the real `ocirt daemon` (subprocess) with 20 running bridge-mode
busybox containers (`sleep`, so they themselves cost nothing). Containers outlive the
daemon (docs/kanto-compatibility.md decision 10), so each round restarts the daemon on
the same home, alternately

- off: `things.features` = [ContainerFactory] (the metrics modules are never imported);
- on:  [ContainerFactory, Metrics] with the request `{"frequency": "1s"}` (every
       container, every measurement: the most expensive request),

and the order of the two flips every round. After each start the daemon settles for
SETTLE seconds, then its CPU time (utime + stime of /proc/<pid>/stat) is taken over
WINDOW seconds and its VmRSS at the end. The "on" window also counts the data messages
the cloud received, to show the feature was working. Medians over ROUNDS.

Targets (issue 14): CPU on - off <= 1 % of one core; RSS on - off <= 1 MB.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The repository last: its tests package (the harness needs tests.support), never its
# ocirt ahead of the installed one.
sys.path.append(str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration" / "things"))

from service_harness import IMAGE, Broker, Cloud, Service, build_layout  # noqa: E402

CONTAINERS = 20
SETTLE = 5.0
SLEEPER = {"cmd": ["sleep", "1000000"], "networkMode": "bridge", "restartPolicy": {"type": "no"}}
OFF = {"features": ["ContainerFactory"]}
ON = {"features": ["ContainerFactory", "Metrics"]}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def data_messages(cloud: Cloud) -> list[dict[str, object]]:
    with cloud._cond:
        return [
            m.body
            for m in cloud.messages
            if isinstance(m.body, dict)
            and m.body.get("path") == "/features/Metrics/outbox/messages/data"
        ]


def remove_cgroup_dirs(name: str) -> None:
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup", topdown=False):
        if name in dirnames:
            with contextlib.suppress(OSError):
                os.rmdir(Path(dirpath) / name)


def window(
    service: Service, cloud: Cloud, on: bool, seconds: float
) -> tuple[float, float, int, int]:
    """(CPU % of one core, RSS MB, data messages, containers in the last) of one start."""
    service.extra_config["things"] = ON if on else OFF
    cloud.messages.clear()
    bootstraps = cloud.bootstraps
    service.start()
    cloud.wait_for(lambda: cloud.bootstraps > bootstraps, "the bootstrap")
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    if on:
        got = cloud.call("request", "Metrics", {"frequency": "1s"})
        assert got.body["status"] == 204, got.body
    time.sleep(SETTLE)
    assert service.proc is not None
    pid = service.proc.pid
    before_cpu, before_data, t0 = cpu_seconds(pid), len(data_messages(cloud)), time.monotonic()
    time.sleep(seconds)
    used, elapsed = cpu_seconds(pid) - before_cpu, time.monotonic() - t0
    rss, data = rss_mb(pid), data_messages(cloud)
    service.stop()
    last = data[-1]["value"] if data else {}
    measured = len(last.get("snapshot", [])) if isinstance(last, dict) else 0
    return used / elapsed * 100.0, rss, len(data) - before_data, measured


def main(rounds: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="ocirt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(tmp / "rootfs")], check=True,
                       capture_output=True)  # fmt: skip
        layout = build_layout(tmp / "rootfs", tmp / "layout")
        broker = Broker(tmp)
        broker.start()
        service = Service(tmp, broker.port, layout)
        service.cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
        cloud = None
        on_cpu: list[float] = []
        off_cpu: list[float] = []
        on_rss: list[float] = []
        off_rss: list[float] = []
        ticks: list[int] = []
        measured: list[int] = []
        try:
            service.extra_config = {"log": {"log_level": "INFO"}, "things": OFF}
            service.start()
            cloud = Cloud(broker.port, f"bench:gw{uuid.uuid4().hex[:6]}")
            cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
            for _ in range(CONTAINERS):
                value = {"imageRef": IMAGE, "start": True, "config": SLEEPER}
                got = cloud.call("createWithConfig", "ContainerFactory", value)
                assert got.body["status"] == 200, got.body
            service.stop()
            for index in range(rounds):
                order = (False, True) if index % 2 == 0 else (True, False)
                for on in order:
                    cpu, rss, data, seen = window(service, cloud, on, seconds)
                    (on_cpu if on else off_cpu).append(cpu)
                    (on_rss if on else off_rss).append(rss)
                    if on:
                        ticks.append(data)
                        measured.append(seen)
                    print(f"round {index + 1} metrics {'on ' if on else 'off'}: "
                          f"CPU {cpu:.2f} % RSS {rss:.2f} MB data messages {data}",
                          flush=True)  # fmt: skip
        finally:
            if cloud is not None:
                cloud.close()
            service.cleanup()
            remove_cgroup_dirs(service.cgroup_parent)
            broker.stop()
    cpu_on, cpu_off = statistics.median(on_cpu), statistics.median(off_cpu)
    rss_on, rss_off = statistics.median(on_rss), statistics.median(off_rss)
    print(f"daemon: {sys.executable} (Python {sys.version.split()[0]})")
    print(f"containers: {CONTAINERS} bridge-mode; rounds: {rounds}; window: {seconds:g} s")
    print(f"containers in the last data message of each on-window: {measured}")
    print(f"data messages per on-window (median): {statistics.median(ticks)}")
    print(f"daemon CPU, metrics off (median): {cpu_off:.2f} % of one core")
    print(f"daemon CPU, metrics on at 1 s (median): {cpu_on:.2f} % of one core")
    print(f"metrics cost: {cpu_on - cpu_off:.2f} % of one core (target <= 1 %)")
    print(f"daemon RSS, metrics off (median): {rss_off:.2f} MB")
    print(f"daemon RSS, metrics on (median): {rss_on:.2f} MB")
    print(f"metrics RSS: {rss_on - rss_off:+.2f} MB (target <= 1 MB)")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 5,
        float(sys.argv[2]) if len(sys.argv) > 2 else 20.0,
    )
