"""The CLI's cost: `ocirt list` against a bare `python3 -c pass` of the same interpreter and
against containerd's `ctr c ls`, with 0, 1 and 50 running containers; and a create+start
through the CLI (`ocirt create --start`) against `ctr run -d` of the same image. Needs root.

Usage: python3 bench/cli_latency.py [--rounds 20] [--counts 0,1,50]

It measures the ocirt its interpreter imports, through the `ocirt` script installed beside
that interpreter (a device's install is `pip install .`):
    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo paho-mqtt pytest
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/cli_latency.py
(pytest and paho-mqtt for tests/integration/things/service_harness.py, which starts the
daemon: a private home, exec root and bridge, things off; and removes all at the end).

containerd is Debian's 1.6, a private instance (bench/benchlib.py); the same busybox image
is pushed to a local docker-registry and pulled by `ctr images pull --plain-http`, and
loaded into ocirt's store. Containers on both sides run busybox `sh` in host mode. Each
round runs every contender once, in turn (interleaved); the first round is dropped;
medians and the median of per-round ratios are printed.
"""

from __future__ import annotations

import argparse
import shutil
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

from service_harness import IMAGE, Service


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--counts", default="0,1,50")
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    print(benchlib.describe())
    cli = benchlib.ocirt_cli()
    print(f"CLI: {' '.join(cli)}")
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    base = Path(tempfile.mkdtemp(prefix="ocirt-bench-", dir="/run"))
    service = None
    registry = None
    cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    try:
        layout = benchlib.busybox_layout(work)
        registry = benchlib.Registry(work / "registry")
        ref = registry.push_layout(layout, "itest", "bench/busybox:itest")
        service = Service(work, 0, layout, cgroup_parent=cgroup_parent)
        service.extra_config = {"things": {"enable": False}, "log": {"log_level": "INFO"}}
        service.start()
        sock = str(service.socket)

        def ocirt(*argv: str) -> str:
            done = subprocess.run(
                [*cli, argv[0], "--socket", sock, *argv[1:]],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(f"ocirt {' '.join(argv)}: {done.stderr.strip()}")
            return done.stdout

        with benchlib.containerd(base / "containerd") as ctd:
            if ctd is not None:
                ctd.ctr("images", "pull", "--plain-http", ref)

            # create+start through the CLI, against ctr run -d (image present on both).
            def ocirt_create() -> float:
                name = f"cs{uuid.uuid4().hex[:8]}"
                t0 = time.perf_counter()
                ocirt("create", "--start", "--network", "host", "--name", name, IMAGE,
                      *benchlib.BUSYBOX_SERVE)  # fmt: skip
                elapsed = time.perf_counter() - t0
                ocirt("remove", "-f", name)
                return elapsed

            def ctr_run() -> float:
                assert ctd is not None
                cid = f"cs{uuid.uuid4().hex[:8]}"
                elapsed = ctd.run_detached(ref, cid)
                ctd.remove(cid)
                return elapsed

            contenders = {"ocirt create --start": ocirt_create}
            if ctd is not None:
                contenders["ctr run -d"] = ctr_run
            got = benchlib.interleave(args.rounds, contenders)
            lines.append(
                f"create+start through the CLI, host mode, image present ({args.rounds} rounds):"
            )
            for name, values in got.items():
                lines.append(f"  {name:28} median {benchlib.median_ms(values):7.1f} ms")
            if ctd is not None:
                paired = statistics.median(
                    o / c
                    for o, c in zip(got["ocirt create --start"], got["ctr run -d"], strict=True)
                )
                lines.append(f"  ocirt / ctr, median of per-round ratios: {paired:.2f}x")

            # list with N running containers on each side.
            running = 0
            list_medians: dict[int, float] = {}
            for count in counts:
                while running < count:
                    ocirt("create", "--start", "--network", "host", IMAGE,
                          *benchlib.BUSYBOX_SERVE)  # fmt: skip
                    if ctd is not None:
                        ctd.run_detached(ref, f"ls{running}")
                    running += 1
                contenders = {
                    "ocirt list": lambda: benchlib.timed([*cli, "list", "--socket", sock]),
                    "python3 -c pass": lambda: benchlib.timed([sys.executable, "-c", "pass"]),
                }
                if ctd is not None:
                    contenders["ctr c ls"] = lambda: benchlib.timed(ctd.ctr_argv("c", "ls"))
                got = benchlib.interleave(args.rounds, contenders)
                list_medians[count] = benchlib.median_ms(got["ocirt list"])
                lines.append(f"list with {count} running containers ({args.rounds} rounds):")
                for name, values in got.items():
                    lines.append(f"  {name:28} median {benchlib.median_ms(values):7.1f} ms")
                paired = statistics.median(
                    o / p for o, p in zip(got["ocirt list"], got["python3 -c pass"], strict=True)
                )
                lines.append(f"  ocirt list / python3 -c pass, median of per-round ratios: "
                             f"{paired:.2f}x (target <= 2.5x)")  # fmt: skip
                if ctd is not None:
                    paired = statistics.median(
                        o / c for o, c in zip(got["ocirt list"], got["ctr c ls"], strict=True)
                    )
                    lines.append(
                        f"  ocirt list / ctr c ls, median of per-round ratios: {paired:.2f}x"
                    )
            if len(counts) > 1:
                # #17's figure is 50 against one container, not against none.
                low = 1 if 1 in counts else counts[0]
                high = counts[-1]
                lines.append(
                    f"ocirt list with {high} / with {low}: "
                    f"{list_medians[high] / list_medians[low]:.2f}x (target <= 1.3x)"
                )
            lines.append(benchlib.loadavg())
    finally:
        if service is not None:
            service.cleanup()
        benchlib.remove_cgroup_dirs(cgroup_parent)
        if registry is not None:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)
    if benchlib.containerd_missing() is None:
        print(f"containerd {benchlib.containerd_version()}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
