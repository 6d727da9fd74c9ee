#!/usr/bin/env python3
"""Pull + unpack of a ~100 MB, 5-layer image from a local docker-registry: ocirt vs
`skopeo copy` + `umoci unpack`, in the same run; ocirt's peak RSS during the pull; and the
time to prepare a second container rootfs of an image already present.

Run as root from the repo: python3 bench/image_pull.py [--mb 100] [--layers 5]
Everything it starts (registry, temp dirs, mounts) is removed at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PULL = """
import sys
from pathlib import Path
from ocirt.image.registry.auth import RegistryAccess
from ocirt.image.service import ImageService
home, host, ref = sys.argv[1:4]
ImageService(Path(home), RegistryAccess(insecure=frozenset({host}))).pull(ref)
"""


def load_mkimage():  # type: ignore[no-untyped-def]
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


def run_child(cmd: list[str], tmp: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command. GNU time reports the RSS: a child
    forked straight from this (large) process would count our pages as its own."""
    rss_file = tmp / "rss"
    start = time.perf_counter()
    subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    return elapsed, int(rss_file.read_text().split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--layers", type=int, default=5)
    args = parser.parse_args()
    mkimage = load_mkimage()
    tmp = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    proc = None
    service = None
    try:
        rootfs = tmp / "rootfs"
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
        layers = mkimage.split_rootfs(rootfs, 1)
        per_layer = args.mb * (1 << 20) // args.layers
        for i in range(args.layers):

            def build(t, i=i):  # type: ignore[no-untyped-def]
                for j in range(per_layer // (512 << 10)):
                    mkimage.add_file(t, f"data/l{i}/f{j}", os.urandom(512 << 10))

            layers.append(mkimage.Layer(mkimage.tar_bytes(build)))
        layout = tmp / "layout"
        mkimage.write_index(layout, "bench", [mkimage.write_image(layout, layers)], nested=False)

        port = free_port()
        host = f"127.0.0.1:{port}"
        (tmp / "reg.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'regdata'}\n"
            f"http:\n  addr: {host}\n"
        )
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(tmp / "reg.yml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        ref = f"{host}/bench/big:v1"
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                f"oci:{layout}:bench",
                f"docker://{ref}",
            ],
            check=True,
        )
        size = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
        subprocess.run(["sync"], check=True)

        home = tmp / "home"
        ocirt_s, ocirt_rss = run_child([sys.executable, "-c", PULL, str(home), host, ref], tmp)

        sk_layout = tmp / "skopeo-layout"
        sk_s, sk_rss = run_child(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                f"docker://{ref}",
                f"oci:{sk_layout}:v1",
            ],
            tmp,
        )
        um_s, um_rss = run_child(
            ["umoci", "unpack", "--image", f"{sk_layout}:v1", str(tmp / "bundle")], tmp
        )

        sys.path.insert(0, str(REPO))
        from ocirt.image.registry.auth import RegistryAccess
        from ocirt.image.service import ImageService

        service = ImageService(home, RegistryAccess(insecure=frozenset({host})))
        image = service.get(ref)
        service.prepare_rootfs(image, "bench-first")
        times = []
        for i in range(20):
            start = time.perf_counter()
            service.prepare_rootfs(image, f"bench-{i}")
            times.append((time.perf_counter() - start) * 1000)
            service.release_rootfs(f"bench-{i}")
        service.release_rootfs("bench-first")

        print(f"image: {len(layers)} layers, {size / 1e6:.1f} MB stored (blobs), local registry")
        print(f"{'':32} {'wall s':>8} {'peak RSS MB':>12}")
        print(f"{'ocirt pull+unpack':32} {ocirt_s:8.2f} {ocirt_rss / 1024:12.1f}")
        print(f"{'skopeo copy':32} {sk_s:8.2f} {sk_rss / 1024:12.1f}")
        print(f"{'umoci unpack':32} {um_s:8.2f} {um_rss / 1024:12.1f}")
        print(f"{'skopeo + umoci':32} {sk_s + um_s:8.2f}")
        print("containerd/ctr: not installed on this machine, not measured")
        print(
            f"second container rootfs (overlay mount): median {statistics.median(times):.2f} ms, "
            f"max {max(times):.2f} ms over {len(times)}"
        )
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if service is not None:
            for cid in service.snapshots.containers():
                service.release_rootfs(cid)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
