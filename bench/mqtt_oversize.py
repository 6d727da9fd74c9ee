"""Daemon RSS while oversized MQTT messages are refused, against the same daemon idle
(baseline, same run). Needs root and mosquitto.

Usage: python3 bench/mqtt_oversize.py [MESSAGES] [MB]   (default 10 messages of 50 MB)

A private mosquitto on 127.0.0.1 (default settings: it takes messages up to 256 MB) and
the real `ocirt daemon` (subprocess, default `limits.mqtt_max_message_size` of 1 MiB)
are started. Each round samples the daemon's VmRSS while it is idle, then sends one
MB-sized command (QoS 1) and samples VmRSS every 10 ms until the 413 answer comes back;
idle and busy samples interleave round by round. Printed: the median idle RSS, the
highest RSS seen while refusing, the RSS after the last refusal, and the differences.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The repository last: its tests package (the harness needs tests.support), never its
# ocirt ahead of the installed one.
sys.path.append(str(REPO))
sys.path.insert(0, str(REPO / "tests" / "integration" / "things"))

from service_harness import Broker, Cloud, Service, build_layout  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main(messages: int, megabytes: int) -> None:
    payload = b"x" * (megabytes * 1024 * 1024)
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
        idle: list[float] = []
        busy: list[float] = []
        try:
            service.extra_config = {"log": {"log_level": "INFO"}}
            service.start()
            cloud = Cloud(broker.port, f"bench:gw{uuid.uuid4().hex[:6]}")
            cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
            assert service.proc is not None
            pid = service.proc.pid
            time.sleep(1.0)  # let start-up garbage settle
            statuses = []
            for index in range(messages):
                for _ in range(10):
                    idle.append(rss_mb(pid))
                    time.sleep(0.01)
                req = f"big{index}"
                done = threading.Event()

                def sample(done: threading.Event = done) -> None:
                    while not done.is_set():
                        busy.append(rss_mb(pid))
                        time.sleep(0.01)

                sampler = threading.Thread(target=sample)
                sampler.start()
                try:
                    answer = cloud.response(
                        cloud.send("create", "ContainerFactory", raw=payload, req_id=req)
                    )
                finally:
                    done.set()
                    sampler.join()
                statuses.append(answer.body["status"])
            time.sleep(0.5)
            after = rss_mb(pid)
            alive = service.proc.poll() is None
        finally:
            if cloud is not None:
                cloud.close()
            service.cleanup()
            broker.stop()
    base = statistics.median(idle)
    peak = max(busy)
    print(f"messages: {messages} x {megabytes} MB, answers: {sorted(set(statuses))}")
    print(f"daemon alive after: {alive}")
    print(f"daemon RSS idle (median of {len(idle)} samples): {base:.1f} MB")
    print(f"daemon RSS while refusing (max of {len(busy)} samples): {peak:.1f} MB "
          f"(+{peak - base:.1f} MB; target <= +2 MB)")  # fmt: skip
    print(f"daemon RSS after the last refusal: {after:.1f} MB (+{after - base:.1f} MB)")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    main(count, size)
