"""The daemon's resident memory with N running bridge-mode containers after a pull (target
<= 25 MB with 50), against a bare python3 of the same interpreter and against containerd
plus its shims with as many running containers (same run). Needs root.

Usage: python3 bench/daemon_rss.py [CONTAINERS]   (default 50)

It measures the ocirt its interpreter imports, started as a device starts it (the `ocirt`
script beside the interpreter); the target is for Debian's /usr/bin/python3 with a normal
install:
    /usr/bin/python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo paho-mqtt pytest
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/daemon_rss.py
(pytest and paho-mqtt for tests/integration/things/service_harness.py: a private home,
exec root, bridge and mosquitto on 127.0.0.1; all removed at the end).

The daemon starts with an empty image store and its things client connected to a private
mosquitto. The first `ocirt create --start` names an image on a local docker-registry
(busybox, pushed there by the bench), so the daemon pulls it; N containers in all run
busybox `sh` in bridge mode (the default). VmRSS of the daemon is read idle, after the
pull with one container, and with N running; then the daemon is restarted (the containers
keep running) and read again: the same N containers without a pull since start. The
monitors (one small C process per container) are summed apart. containerd (Debian's
1.6, a private instance, bench/benchlib.py) pulls the same image (`ctr images pull
--plain-http`) and runs N containers (`ctr run -d --net-host`: no CNI is configured).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import benchlib

# The repository last: its tests package (the harness needs tests.support), never its
# ocirt ahead of the installed one.
sys.path.append(str(benchlib.REPO))
sys.path.insert(0, str(benchlib.REPO / "tests" / "integration" / "things"))

from service_harness import Broker, Service


def settle_rss(pid: int) -> float:
    time.sleep(2.0)  # let start-up or create garbage settle before reading
    return benchlib.vmrss_kb(pid) / 1024


def monitors_kb(service: Service) -> list[int]:
    out = []
    for handle in (service.home / "containers").glob("*/monitor/handle.json"):
        pid = json.loads(handle.read_text())["monitorPid"]
        out.append(benchlib.vmrss_kb(pid))
    return out


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    print(benchlib.describe())
    cli = benchlib.ocirt_cli()
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    base = Path(tempfile.mkdtemp(prefix="ocirt-bench-", dir="/run"))
    cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
    broker = Broker(work)
    service = registry = None
    lines: list[str] = []
    try:
        broker.start()
        bare = subprocess.run(
            [sys.executable, "-P", "-c",
             "print(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        layout = benchlib.busybox_layout(work)
        registry = benchlib.Registry(work / "registry")
        ref = registry.push_layout(layout, "itest", "bench/busybox:rss")
        # The harness loads its busybox offline; the store is emptied so that the daemon
        # pulls the image the containers run.
        service = Service(work, broker.port, layout, cgroup_parent=cgroup_parent)
        shutil.rmtree(service.home)
        service.home.mkdir(parents=True)
        service.extra_config = {
            "log": {"log_level": "INFO"},
            "containers": {"insecure_registries": [registry.host]},
        }
        service.start()
        assert service.proc is not None
        idle = settle_rss(service.proc.pid)

        def create() -> None:
            done = subprocess.run(
                [*cli, "create", "--socket", str(service.socket), "--start", ref,
                 *benchlib.BUSYBOX_SERVE],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"ocirt create: {done.stderr}")

        create()
        pulled = settle_rss(service.proc.pid)
        for _ in range(count - 1):
            create()
        loaded = settle_rss(service.proc.pid)
        monitors = monitors_kb(service)
        service.stop(signal.SIGTERM)
        service.start()
        assert service.proc is not None
        restarted = settle_rss(service.proc.pid)
        rows = [
            ("python3 alone", int(bare.stdout) / 1024, ""),
            ("ocirt daemon idle, connected", idle, ""),
            ("ocirt daemon after the pull, 1 container", pulled, ""),
            (
                f"ocirt daemon after the pull, {count} running (bridge)",
                loaded,
                " (target <= 25 MB)",
            ),
            (f"ocirt daemon restarted, same {count} running", restarted, " (no pull since start)"),
        ]
        lines.extend(f"{label + ':':52} {mb:6.1f} MB{note}" for label, mb, note in rows)
        lines.append(
            f"monitors: {len(monitors)} x {sum(monitors) / len(monitors) / 1024:.2f} MB average; "
            f"daemon + monitors {loaded + sum(monitors) / 1024:.1f} MB"
        )
        with benchlib.containerd(base / "containerd") as ctd:
            if ctd is not None:
                assert ctd.proc is not None
                ctd_idle = settle_rss(ctd.proc.pid)
                ctd.ctr("images", "pull", "--plain-http", ref)
                for i in range(count):
                    ctd.run_detached(ref, f"rss{i}")
                ctd_loaded = settle_rss(ctd.proc.pid)
                shims = [benchlib.vmrss_kb(p) for p in ctd.pids()[1:]]
                if len(shims) != count:
                    raise RuntimeError(f"expected {count} shims, found {len(shims)}")
                lines.append(
                    f"containerd {benchlib.containerd_version()}: idle {ctd_idle:.1f} MB; "
                    f"after the pull with {count} running {ctd_loaded:.1f} MB; shims {count} x "
                    f"{sum(shims) / len(shims) / 1024:.2f} MB average; containerd + shims "
                    f"{ctd_loaded + sum(shims) / 1024:.1f} MB"
                )
        lines.append(benchlib.loadavg())
    finally:
        if service is not None:
            service.cleanup()
        benchlib.remove_cgroup_dirs(cgroup_parent)
        if registry is not None:
            registry.stop()
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
