"""Daemon memory after a pull (#17 item 4): VmRSS of the daemon with N running
bridge-mode containers, before and after it pulls an image from a local registry.
Needs root.

Usage: python3 bench/daemon_rss_pull.py [CONTAINERS] [MB]   (default 50, 100)

Run it with the interpreter of an installed ocirt (a venv of Debian's /usr/bin/python3),
from outside the repository (the repository is appended to the path only for the test
harness and hack/mkimage.py). A private docker-registry on 127.0.0.1 serves a 5-layer
image of about MB megabytes of random data plus busybox (`skopeo copy` puts it there);
the daemon (tests/integration/things/service_harness.py: own bridge, private mosquitto,
connected) runs N busybox containers in bridge mode (the default), created through the
local API from an image already present. Then a create of the registry's image makes the
daemon pull it; RSS is read 3 s after each step (VmRSS, /proc/<pid>/status), with
python3 alone as the floor. Baseline: the same daemon before the pull, same run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))
sys.path.append(str(REPO / "tests" / "integration" / "things"))
sys.path.append(str(REPO / "bench"))

from restart_ready import call, populate, remove_cgroup_dirs  # noqa: E402
from service_harness import Broker, Cloud, Service, build_layout  # noqa: E402

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]
SETTLE = 3.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def load_mkimage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkimage", REPO / "hack" / "mkimage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mkimage"] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def registry_image(tmp: Path, megabytes: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """A docker-registry on 127.0.0.1 with a 5-layer image; (process, host, reference)."""
    mkimage = load_mkimage()
    rootfs = tmp / "pull-rootfs"
    subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True,
                   capture_output=True)  # fmt: skip
    layers = mkimage.split_rootfs(rootfs, 1)
    per_layer = megabytes * (1 << 20) // 5
    for i in range(5):

        def build(t: object, i: int = i) -> None:
            for j in range(per_layer // (512 << 10)):
                mkimage.add_file(t, f"data/l{i}/f{j}", os.urandom(512 << 10))

        layers.append(mkimage.Layer(mkimage.tar_bytes(build)))
    layout = tmp / "pull-layout"
    mkimage.write_index(layout, "bench", [mkimage.write_image(layout, layers)], nested=False)
    port = free_port()
    host = f"127.0.0.1:{port}"
    (tmp / "reg.yml").write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'regdata'}\n"
        f"http:\n  addr: {host}\n"
    )
    proc = subprocess.Popen(["docker-registry", "serve", str(tmp / "reg.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    ref = f"{host}/bench/big:v1"
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    f"oci:{layout}:bench", f"docker://{ref}"], check=True)  # fmt: skip
    return proc, host, ref


def main(count: int, megabytes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ocirt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(tmp / "rootfs")], check=True,
                       capture_output=True)  # fmt: skip
        layout = build_layout(tmp / "rootfs", tmp / "layout")
        registry, host, ref = registry_image(tmp, megabytes)
        broker = Broker(tmp)
        broker.start()
        service = Service(tmp, broker.port, layout)
        service.cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
        service.extra_config = {
            "log": {"log_level": "INFO"},
            "containers": {"insecure_registries": [host]},
        }
        cloud = None
        try:
            service.start()
            assert service.proc is not None
            pid = service.proc.pid
            cloud = Cloud(broker.port, f"bench:gw{uuid.uuid4().hex[:6]}")
            cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
            time.sleep(SETTLE)
            idle = rss_mb(pid)
            populate(service, count)
            time.sleep(SETTLE)
            before = rss_mb(pid)
            t0 = time.perf_counter()
            value = {"imageRef": ref, "start": True, "config": {"cmd": SERVE}}
            view = call(service.socket, "create", {"value": value}, timeout=600)
            pulled = time.perf_counter() - t0
            assert isinstance(view, dict) and not view["state"].get("error"), view
            time.sleep(SETTLE)
            after = rss_mb(pid)
            bare = subprocess.run(
                [sys.executable, "-c",
                 "import pathlib;print([l for l in pathlib.Path('/proc/self/status')"
                 ".read_text().splitlines() if l.startswith('VmRSS')][0].split()[1])"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
        finally:
            if cloud is not None:
                cloud.close()
            service.cleanup()
            remove_cgroup_dirs(service.cgroup_parent)
            broker.stop()
            registry.kill()
            registry.wait()
            with contextlib.suppress(OSError):
                subprocess.run(["sync"], check=False)
    import ocirt

    where = "editable/source" if Path(ocirt.__file__).parent.parent == REPO else "installed"
    print(f"daemon: {sys.executable} (Python {sys.version.split()[0]}), ocirt {where}")
    print(f"python3 alone: {int(bare.stdout) / 1024:.1f} MB")
    print(f"daemon RSS idle, connected: {idle:.1f} MB")
    print(f"daemon RSS with {count} running bridge containers: {before:.1f} MB")
    print(
        f"daemon RSS with {count + 1} after the pull of a {megabytes} MB image "
        f"({pulled:.2f} s, create+start included): {after:.1f} MB (target <= 25 MB)"
    )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 50,
        int(sys.argv[2]) if len(sys.argv) > 2 else 100,
    )
