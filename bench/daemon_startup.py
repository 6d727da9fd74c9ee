"""The daemon's restart-to-ready with 1 and with 50 running containers, against a bare
`python3 -c pass` of the same interpreter and against containerd's restart-to-ready with
as many running containers (same run, interleaved rounds, medians). Needs root.

Usage: python3 bench/daemon_startup.py [--rounds 10] [--counts 1,50]

It measures the ocirt its interpreter imports, started as a device starts it: the `ocirt`
script installed beside that interpreter (a device's install is `pip install .`):
    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo paho-mqtt pytest
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/daemon_startup.py
(pytest and paho-mqtt for tests/integration/things/service_harness.py: a private home,
exec root, bridge and mosquitto on 127.0.0.1; all removed at the end).

A restart is: SIGTERM (the containers keep running, docs/kanto-compatibility.md decision 10), wait
for the exit, start `ocirt daemon` again; the clock runs from the start until
  ready   the daemon's sd_notify READY=1 on a NOTIFY_SOCKET of the bench (sent once the
          local API answers from the records, before the rest is built),
  answer  the local API's first answer to a `list` request (JSON line on its socket), and
  serving the daemon's STATUS=serving (built, recovered, things client started).
Containers are created by a daemon started without NOTIFY_SOCKET: ocirt's daemon passes
it on to runc, whose `run -d` then waits for a READY=1 from the container (a known defect,
reported). The containers are busybox `sh` in bridge mode (the default), with the things client
connected to a private mosquitto. containerd (Debian's 1.6, a private instance,
bench/benchlib.py) is restarted the same way with as many running containers
(`ctr run -d --net-host` of the same image); its clock stops at its own READY=1
(containerd sends it once its API serves, after reconnecting to its shims).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
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

from service_harness import IMAGE, Broker, Service


class Notify:
    """A NOTIFY_SOCKET (unix datagram) that a daemon's sd_notify writes to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)

        self.got: set[bytes] = set()

    def seen(self, marker: bytes) -> bool:
        """Whether `marker` (a line such as READY=1) came since the last `drain`."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self.got.update(self.sock.recv(4096).split(b"\n"))
        return marker in self.got

    def ready(self) -> bool:
        return self.seen(b"READY=1")

    def drain(self) -> None:
        self.seen(b"")
        self.got.clear()

    def close(self) -> None:
        self.sock.close()


def api_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
        sock.sendall(json.dumps({"op": "list", "args": {}}).encode() + b"\n")
        with sock.makefile("rb") as reader:
            line = reader.readline()
        return bool(line) and json.loads(line).get("ok") is True


def stop_daemon(service: Service) -> None:
    assert service.proc is not None
    service.proc.send_signal(signal.SIGTERM)
    service.proc.wait(120)
    service.proc = None


def restart_ocirt(
    service: Service, notify: Notify | None, cli: list[str]
) -> tuple[float, float, float]:
    """(seconds to READY=1, to the first API answer, to STATUS=serving) of one restart;
    without `notify` (no NOTIFY_SOCKET), READY and serving are not waited for (0)."""
    if service.proc is not None:
        stop_daemon(service)
    env = dict(os.environ)
    if notify is not None:
        notify.drain()
        env["NOTIFY_SOCKET"] = str(notify.path)
    log = service.log_path.open("ab")
    t0 = time.perf_counter()
    service.proc = subprocess.Popen(
        [*cli, "daemon", "--config", str(service.config_path),
         "--cgroup-parent", service.cgroup_parent],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    log.close()
    ready = answer = serving = 0.0
    deadline = time.monotonic() + 120
    # A daemon from before STATUS=serving never sends it: given up on 3 s after READY=1.
    serving_given_up = False
    while not (((ready and (serving or serving_given_up)) or notify is None) and answer):
        if ready and not serving and time.perf_counter() - t0 > ready + 3.0:
            serving_given_up = True
        if not ready and notify is not None and notify.ready():
            ready = time.perf_counter() - t0
        if not serving and notify is not None and notify.seen(b"STATUS=serving"):
            serving = time.perf_counter() - t0
        if not answer and service.socket.exists() and api_answers(service.socket):
            answer = time.perf_counter() - t0
        if service.proc.poll() is not None:
            raise RuntimeError(f"daemon exited: {service.log_path.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("daemon not ready")
        time.sleep(0.001)
    return ready, answer, serving


def restart_containerd(ctd: benchlib.Containerd, notify: Notify) -> float:
    ctd.stop()
    notify.drain()
    t0 = time.perf_counter()
    ctd.launch({**os.environ, "NOTIFY_SOCKET": str(notify.path)})
    assert ctd.proc is not None
    deadline = time.monotonic() + 120
    while not notify.ready():
        if ctd.proc.poll() is not None:
            raise RuntimeError("containerd exited")
        if time.monotonic() > deadline:
            raise RuntimeError("containerd sent no READY=1")
        time.sleep(0.001)
    elapsed = time.perf_counter() - t0
    ctd.ctr("version")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--counts", default="1,50")
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    print(benchlib.describe())
    cli = benchlib.ocirt_cli()
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    base = Path(tempfile.mkdtemp(prefix="ocirt-bench-", dir="/run"))
    cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
    broker = Broker(work)
    service = registry = None
    notify = Notify(base / "notify.sock")
    lines: list[str] = []
    medians: dict[int, float] = {}
    answers: dict[int, float] = {}
    try:
        broker.start()
        layout = benchlib.busybox_layout(work)
        registry = benchlib.Registry(work / "registry")
        ref = registry.push_layout(layout, "itest", "bench/busybox:itest")
        service = Service(work, broker.port, layout, cgroup_parent=cgroup_parent)
        service.extra_config = {"log": {"log_level": "INFO"}}
        service.write_config()
        restart_ocirt(service, None, cli)
        with benchlib.containerd(base / "containerd") as ctd:
            if ctd is not None:
                ctd.ctr("images", "pull", "--plain-http", ref)
            running = 0
            for count in counts:
                # ocirt's daemon passes NOTIFY_SOCKET on to runc, whose `run -d` then
                # waits for the container's own READY=1: containers are created by a
                # daemon started without it.
                restart_ocirt(service, None, cli)
                while running < count:
                    done = subprocess.run(
                        [*cli, "create", "--socket", str(service.socket), "--start", IMAGE,
                         *benchlib.BUSYBOX_SERVE],
                        capture_output=True, text=True, check=False,
                    )  # fmt: skip
                    if done.returncode != 0:
                        raise RuntimeError(f"ocirt create: {done.stderr}")
                    if ctd is not None:
                        ctd.run_detached(ref, f"st{running}")
                    running += 1
                ready: list[float] = []
                answer: list[float] = []
                serving: list[float] = []

                def ocirt_round(
                    ready: list[float] = ready,
                    answer: list[float] = answer,
                    serving: list[float] = serving,
                ) -> float:
                    assert service is not None
                    r, a, s = restart_ocirt(service, notify, cli)
                    ready.append(r)
                    answer.append(a)
                    serving.append(s)
                    return r

                contenders = {
                    "ocirt": ocirt_round,
                    "python3 -c pass": lambda: benchlib.timed([sys.executable, "-c", "pass"]),
                }
                if ctd is not None:
                    contenders["containerd"] = lambda: restart_containerd(ctd, notify)
                got = benchlib.interleave(args.rounds, contenders)
                ready, answer, serving = ready[1:], answer[1:], serving[1:]  # the warm-up
                bare = got["python3 -c pass"]
                medians[count] = benchlib.median_ms(ready)
                lines.append(f"{count} running containers ({args.rounds} rounds, medians):")
                lines.append(
                    f"  ocirt restart to READY=1      {benchlib.median_ms(ready):7.1f} ms; "
                    f"to the first API answer {benchlib.median_ms(answer):7.1f} ms"
                )
                lines.append(
                    "  ocirt restart to STATUS=serving (built, recovered, MQTT started) "
                    + (f"{benchlib.median_ms(serving):7.1f} ms" if all(serving) else "not sent")
                )
                lines.append(f"  python3 -c pass               {benchlib.median_ms(bare):7.1f} ms")
                paired = statistics.median(r / b for r, b in zip(ready, bare, strict=True))
                lines.append(f"  ocirt READY / python3 -c pass, median of per-round ratios: "
                             f"{paired:.1f}x (target <= 12x with one container)")  # fmt: skip
                paired = statistics.median(a / b for a, b in zip(answer, bare, strict=True))
                lines.append(f"  ocirt first answer / python3 -c pass, median of per-round "
                             f"ratios: {paired:.1f}x")  # fmt: skip
                answers[count] = benchlib.median_ms(answer)
                if ctd is not None:
                    ctd_s = got["containerd"]
                    lines.append(
                        f"  containerd restart to READY=1 {benchlib.median_ms(ctd_s):7.1f} ms "
                        f"(containerd {benchlib.containerd_version()}, {count} tasks)"
                    )
                lines.append(f"  {benchlib.loadavg()}")
            if len(counts) > 1:
                low, high = counts[0], counts[-1]
                lines.append(
                    f"ocirt READY with {high} / with {low}: {medians[high] / medians[low]:.2f}x "
                    f"(target <= 1.3x)"
                )
                lines.append(
                    f"ocirt first answer with {high} / with {low}: "
                    f"{answers[high] / answers[low]:.2f}x"
                )
    finally:
        notify.close()
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
