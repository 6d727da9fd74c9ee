"""Start-up and listing that do not grow with containers (#17 item 3): the daemon's
restart-to-ready with 1 and with 50 running bridge-mode containers, against a bare
`python3 -c pass` of the same interpreter; `ocirt list` with 1 and with 50. Needs root.

Usage: python3 bench/restart_ready.py [ROUNDS] [CONTAINERS]   (default 10, 50)

Run it with the interpreter of an installed ocirt, from outside the repository (the
repository is appended to the path only for the test harness). Two daemon worlds
(tests/integration/things/service_harness.py: home, exec root, own bridge, a private
mosquitto), one with 1 running busybox container, one with CONTAINERS, all in bridge
mode (the default), created through the local API.

Restart-to-ready: the daemon is stopped with SIGTERM (its containers keep running), then
started again as `python3 -m ocirt.cli.main daemon ...`; the clock runs from the spawn
until its local API answers a `list` with every container (polled every ms). Each round
times `python3 -c pass`, the small world and the big one, in an order that flips every
round; medians. `ocirt list`: the CLI (`python3 -m ocirt.cli.main list`) wall time, and
the daemon's side alone (one `list` request on the socket from this process).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
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

from service_harness import IMAGE, Broker, Service, build_layout  # noqa: E402

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def remove_cgroup_dirs(name: str) -> None:
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup", topdown=False):
        if name in dirnames:
            with contextlib.suppress(OSError):
                os.rmdir(Path(dirpath) / name)


def call(path: Path, op: str, args: dict[str, object], timeout: float = 120) -> object:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
        with sock.makefile("rb") as reader:
            for line in reader:
                message = json.loads(line)
                if "ok" in message:
                    if not message["ok"]:
                        raise RuntimeError(message)
                    return message.get("result")
    raise RuntimeError("no answer")


def daemon_argv(service: Service) -> list[str]:
    return [sys.executable, "-m", "ocirt.cli.main", "daemon", "--config",
            str(service.config_path), "--cgroup-parent", service.cgroup_parent]  # fmt: skip


def restart(service: Service, expected: int) -> float:
    """Stop the daemon, start it again; seconds from the spawn to a full `list` answer."""
    service.stop()
    with contextlib.suppress(FileNotFoundError):
        service.socket.unlink()  # a socket left by the old daemon answers nothing
    log = service.log_path.open("ab")
    t0 = time.perf_counter()
    service.proc = subprocess.Popen(daemon_argv(service), stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = t0 + 120
    while True:
        try:
            listed = call(service.socket, "list", {}, timeout=60)
        except OSError as exc:
            if time.perf_counter() > deadline or service.proc.poll() is not None:
                raise RuntimeError(
                    f"daemon did not come up: {service.log_path.read_text()[-2000:]}"
                ) from exc
            time.sleep(0.001)
            continue
        elapsed = time.perf_counter() - t0
        assert isinstance(listed, list) and len(listed) == expected, listed
        return elapsed


def bare_python() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def cli_list(service: Service) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ocirt.cli.main", "list", "--socket", str(service.socket)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - t0


def api_list(service: Service) -> float:
    t0 = time.perf_counter()
    call(service.socket, "list", {})
    return time.perf_counter() - t0


def populate(service: Service, count: int) -> None:
    value = {"imageRef": IMAGE, "start": True, "config": {"cmd": SERVE}}
    for _ in range(count):
        view = call(service.socket, "create", {"value": value})
        assert isinstance(view, dict) and not view["state"].get("error"), view


def main(rounds: int, many: int) -> None:
    base: list[float] = []
    ready: dict[int, list[float]] = {1: [], many: []}
    cli: dict[int, list[float]] = {1: [], many: []}
    api: dict[int, list[float]] = {1: [], many: []}
    with tempfile.TemporaryDirectory(prefix="ocirt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(tmp / "rootfs")], check=True,
                       capture_output=True)  # fmt: skip
        layout = build_layout(tmp / "rootfs", tmp / "layout")
        broker = Broker(tmp)
        broker.start()
        worlds: dict[int, Service] = {}
        try:
            for count in (1, many):
                (tmp / str(count)).mkdir()
                service = Service(tmp / str(count), broker.port, layout)
                service.cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
                service.extra_config = {"log": {"log_level": "INFO"}}
                worlds[count] = service
                service.start()
                populate(service, count)
            for index in range(rounds + 1):
                order = [0, 1, many] if index % 2 else [many, 1, 0]
                for what in order:
                    if what == 0:
                        elapsed = bare_python()
                        if index:
                            base.append(elapsed)
                        continue
                    elapsed = restart(worlds[what], what)
                    time.sleep(0.5)  # the reconciliation after `ready`
                    if index:
                        ready[what].append(elapsed)
                        cli[what].append(cli_list(worlds[what]))
                        api[what].append(api_list(worlds[what]))
        finally:
            for service in worlds.values():
                service.cleanup()
                remove_cgroup_dirs(service.cgroup_parent)
            broker.stop()
    import ocirt

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    where = "editable/source" if Path(ocirt.__file__).parent.parent == REPO else "installed"
    print(f"daemon: {sys.executable} (Python {sys.version.split()[0]}), ocirt {where}")
    print(f"rounds: {rounds} (interleaved, order flipped every round); medians")
    print(f"python3 -c pass:                          {ms(base):7.1f} ms")
    for count in (1, many):
        print(
            f"restart-to-ready, {count:3d} running container(s): {ms(ready[count]):7.1f} ms "
            f"({ms(ready[count]) / ms(base):.1f}x python3 -c pass)"
        )
    print(f"restart-to-ready {many} / 1: {ms(ready[many]) / ms(ready[1]):.2f}x (target <= 1.3x)")
    for count in (1, many):
        print(
            f"ocirt list, {count:3d} container(s): CLI {ms(cli[count]):6.1f} ms, "
            f"daemon side (one request) {ms(api[count]):6.2f} ms"
        )
    print(
        f"ocirt list {many} / 1: CLI {ms(cli[many]) / ms(cli[1]):.2f}x, "
        f"daemon side {ms(api[many]) / ms(api[1]):.2f}x (target <= 1.3x)"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 10,
        int(sys.argv[2]) if len(sys.argv) > 2 else 50,
    )
