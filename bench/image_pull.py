#!/usr/bin/env python3
"""Pull + unpack of a ~100 MB, 5-layer image from a local docker-registry on 127.0.0.1:
ocirt vs `skopeo copy` + `umoci unpack` and vs containerd's `ctr images pull --plain-http`
(which unpacks into containerd's overlayfs snapshotter), interleaved rounds of the same run,
medians; peak RSS of each (GNU time, a separate process); and the time to prepare a
second container rootfs of an image already present.

Needs root. It measures the ocirt its interpreter imports (never the source tree: the
pull runs in `python3 -P`); a device's install is `pip install .`:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/image_pull.py [--rounds 3]

containerd comes from Debian's package (hack/bench-setup.sh): a private instance is
started with its own root, state and socket (bench/benchlib.py) and stopped by PID.
Everything the bench starts (registry, containerd, temp dirs, mounts) is removed at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

REPO = benchlib.REPO

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


def build_image(tmp: Path, mb: int, layer_count: int) -> tuple[Path, int]:
    """An OCI layout (tag `bench`) of busybox plus `layer_count` layers of random data."""
    mkimage = load_mkimage()
    rootfs = benchlib.mkrootfs(tmp / "rootfs")
    layers = mkimage.split_rootfs(rootfs, 1)
    per_layer = mb * (1 << 20) // layer_count
    for i in range(layer_count):

        def build(t, i=i):  # type: ignore[no-untyped-def]
            for j in range(per_layer // (512 << 10)):
                mkimage.add_file(t, f"data/l{i}/f{j}", os.urandom(512 << 10))

        layers.append(mkimage.Layer(mkimage.tar_bytes(build)))
    layout = tmp / "layout"
    mkimage.write_index(layout, "bench", [mkimage.write_image(layout, layers)], nested=False)
    return layout, len(layers)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(benchlib.describe())
    tmp = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    registry = None
    service = None
    # Every side writes its blobs and unpacked layers under `base` (one file system);
    # /run keeps the store's paths short (the monitors' sockets live there).
    base = Path(tempfile.mkdtemp(prefix="ocirt-bench-", dir="/run"))
    try:
        layout, layer_count = build_image(tmp, args.mb, args.layers)
        registry = benchlib.Registry(tmp / "registry")
        ref = registry.push_layout(layout, "bench", "bench/big:v1")
        host = registry.host
        size = sum(p.stat().st_size for p in (layout / "blobs" / "sha256").iterdir())
        subprocess.run(["sync"], check=True)

        with benchlib.containerd(base / "containerd") as ctd:
            results: dict[str, list[tuple[float, int]]] = {
                "ocirt": [],
                "skopeo": [],
                "umoci": [],
                "ctr": [],
            }
            ctd_rss: list[int] = []
            for index in range(args.rounds):
                home = base / f"home-{index}"
                results["ocirt"].append(
                    run_child([sys.executable, "-P", "-c", PULL, str(home), host, ref], tmp)
                )
                if index < args.rounds - 1:  # the last store serves the rootfs figure
                    shutil.rmtree(home)
                sk_layout = base / f"skopeo-{index}"
                results["skopeo"].append(
                    run_child(
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
                )
                bundle = base / f"bundle-{index}"
                results["umoci"].append(
                    run_child(["umoci", "unpack", "--image", f"{sk_layout}:v1", str(bundle)], tmp)
                )
                shutil.rmtree(sk_layout)
                shutil.rmtree(bundle)
                if ctd is not None:
                    results["ctr"].append(
                        run_child(ctd.ctr_argv("images", "pull", "--plain-http", ref), tmp)
                    )
                    assert ctd.proc is not None
                    ctd_rss.append(benchlib.vmrss_kb(ctd.proc.pid))
                    ctd.ctr("images", "rm", "--sync", ref)
                    ctd.ctr("content", "prune", "references")

        from ocirt.image.registry.auth import RegistryAccess
        from ocirt.image.service import ImageService

        service = ImageService(base / f"home-{args.rounds - 1}",
                               RegistryAccess(insecure=frozenset({host})))  # fmt: skip
        image = service.get(ref)
        service.prepare_rootfs(image, "bench-first")
        times = []
        for i in range(20):
            start = time.perf_counter()
            service.prepare_rootfs(image, f"bench-{i}")
            times.append((time.perf_counter() - start) * 1000)
            service.release_rootfs(f"bench-{i}")
        service.release_rootfs("bench-first")

        def med(name: str) -> tuple[float, float]:
            rows = results[name]
            return (
                statistics.median(r[0] for r in rows),
                statistics.median(r[1] for r in rows) / 1024,
            )

        print(f"{benchlib.loadavg()}; {args.rounds} interleaved rounds, medians")
        print(f"image: {layer_count} layers, {size / 1e6:.1f} MB stored (blobs), local registry")
        print(f"{'':34} {'wall s':>8} {'peak RSS MB':>12}")
        ocirt_s, ocirt_mb = med("ocirt")
        sk_s, sk_mb = med("skopeo")
        um_s, um_mb = med("umoci")
        print(f"{'ocirt pull+unpack':34} {ocirt_s:8.2f} {ocirt_mb:12.1f}")
        print(f"{'skopeo copy':34} {sk_s:8.2f} {sk_mb:12.1f}")
        print(f"{'umoci unpack':34} {um_s:8.2f} {um_mb:12.1f}")
        pairs = [s[0] + u[0] for s, u in zip(results["skopeo"], results["umoci"], strict=True)]
        print(f"{'skopeo + umoci':34} {statistics.median(pairs):8.2f}")
        ratios = [o[0] / p for o, p in zip(results["ocirt"], pairs, strict=True)]
        print(
            f"ocirt / (skopeo + umoci): median of per-round ratios {statistics.median(ratios):.2f}x"
        )
        if results["ctr"]:
            ctr_s, ctr_mb = med("ctr")
            print(
                f"{'ctr images pull --plain-http':34} {ctr_s:8.2f} {ctr_mb:12.1f} "
                f"(containerd {benchlib.containerd_version()}: ctr's RSS; containerd "
                f"{statistics.median(ctd_rss) / 1024:.1f} MB after the pull)"
            )
            ratios = [o[0] / c[0] for o, c in zip(results["ocirt"], results["ctr"], strict=True)]
            print(f"ocirt / ctr pull: median of per-round ratios {statistics.median(ratios):.2f}x")
        print(
            f"second container rootfs (overlay mount): median {statistics.median(times):.2f} ms, "
            f"max {max(times):.2f} ms over {len(times)}"
        )
    finally:
        if registry is not None:
            registry.stop()
        if service is not None:
            for cid in service.snapshots.containers():
                service.release_rootfs(cid)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
