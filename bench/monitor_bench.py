"""Measure the per-container monitor: its RSS while a container logs, and its log
throughput against `cat` into a file in the same run. Run as root:

    python3 bench/monitor_bench.py [--mbytes 200]

Both throughput runs use the same container, which `cat`s a pre-generated file of
base64 lines (76 chars + newline) from its rootfs, so the producer costs the same; the
baseline's stdout pipe goes to a host `cat > file` instead of the monitor.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from ocirt.config.model import LogMode
from ocirt.runtime.monitor import LogOptions, MonitorOptions, launch, read_exit_record

REPO = Path(__file__).resolve().parents[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def make_bundle(work: Path, rootfs: Path, args: list[str], cid: str) -> Path:
    bundle = work / f"bundle-{cid}"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["root"] = {"path": str(rootfs), "readonly": False}
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["linux"]["cgroupsPath"] = cid
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def wait_exit(state: Path, monitor_pid: int) -> int:
    """Wait for the exit record; return the monitor's VmHWM (peak RSS) seen, in KiB."""
    peak = 0
    while read_exit_record(state) is None:
        try:
            for line in Path(f"/proc/{monitor_pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.005)
    return peak


def run_monitor(
    work: Path, root: Path, rootfs: Path, args: list[str], log: LogOptions | None = None
) -> tuple[str, Path, MonitorOptions]:
    cid = f"bench-{uuid.uuid4().hex[:8]}"
    state = Path("/run") / f"ocirt-bench-{cid}"
    opts = MonitorOptions(
        container_id=cid,
        bundle=make_bundle(work, rootfs, args, cid),
        state_dir=state,
        runtime_root=root,
        log=log or LogOptions(path=state / "json.log"),
    )
    return cid, state, opts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mbytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    ns = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    root = Path("/run") / f"ocirt-bench-{uuid.uuid4().hex[:8]}"
    states: list[Path] = []
    try:
        rootfs = work / "rootfs"
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
        root.mkdir(parents=True)

        # --- RSS while a container logs steadily ---
        script = "i=0; while [ $i -lt 400 ]; do echo tick $i; i=$((i+1)); sleep 0.005; done"
        for mode in (LogMode.BLOCKING, LogMode.NON_BLOCKING):
            cid, state, opts = run_monitor(work, root, rootfs, ["/bin/sh", "-c", script])
            states.append(state)
            opts = MonitorOptions(
                **{
                    **{f: getattr(opts, f) for f in opts.__dataclass_fields__},
                    "log": LogOptions(path=state / "json.log", mode=mode),
                }
            )
            handle = launch(opts)
            subprocess.run(["runc", "--root", str(root), "start", cid], check=True)
            peak = 0
            while read_exit_record(state) is None:
                try:
                    peak = max(peak, rss_kib(handle.monitor_pid))
                except (OSError, RuntimeError):
                    break
                time.sleep(0.01)
            subprocess.run(["runc", "--root", str(root), "delete", cid], check=False)
            print(f"monitor VmRSS peak while logging ({mode.value}): {peak} KiB")
        baseline_pid = subprocess.Popen(["sleep", "5"])
        time.sleep(0.2)
        print(f"baseline VmRSS of /bin/sleep: {rss_kib(baseline_pid.pid)} KiB")
        baseline_pid.kill()
        baseline_pid.wait()

        # --- throughput ---
        line_count = ns.mbytes * 1_000_000 // 77
        payload = base64.encodebytes(os.urandom(line_count * 57))
        (rootfs / "data.txt").write_bytes(payload)
        size = len(payload)
        lines = payload.count(b"\n")
        print(f"payload: {size / 1e6:.1f} MB in {lines} lines")
        results: dict[str, list[float]] = {"cat": [], "blocking": [], "non-blocking": []}
        sizes: dict[str, int] = {}
        drops: dict[str, int] = {}
        hwm: dict[str, int] = {}
        for _ in range(ns.repeat):
            # baseline: container stdout -> host cat -> file
            cid = f"bench-{uuid.uuid4().hex[:8]}"
            bundle = make_bundle(work, rootfs, ["cat", "/data.txt"], cid)
            out = work / "cat.out"
            with out.open("wb") as sink:
                cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=sink)
                assert cat.stdin is not None
                subprocess.run(
                    ["runc", "--root", str(root), "create", "--bundle", str(bundle), cid],
                    stdin=subprocess.DEVNULL,
                    stdout=cat.stdin,
                    check=True,
                )
                cat.stdin.close()
                t0 = time.perf_counter()
                subprocess.run(["runc", "--root", str(root), "start", cid], check=True)
                cat.wait()
                results["cat"].append(time.perf_counter() - t0)
            assert out.stat().st_size == size
            subprocess.run(["runc", "--root", str(root), "delete", "-f", cid], check=False)
            out.unlink()
            for mode in (LogMode.BLOCKING, LogMode.NON_BLOCKING):
                cid, state, opts = run_monitor(work, root, rootfs, ["cat", "/data.txt"])
                states.append(state)
                opts = MonitorOptions(
                    **{
                        **{f: getattr(opts, f) for f in opts.__dataclass_fields__},
                        "log": LogOptions(path=state / "json.log", mode=mode),
                    }
                )
                handle = launch(opts)
                t0 = time.perf_counter()
                subprocess.run(["runc", "--root", str(root), "start", cid], check=True)
                hwm[mode.value] = max(hwm.get(mode.value, 0), wait_exit(state, handle.monitor_pid))
                results[mode.value].append(time.perf_counter() - t0)
                record = read_exit_record(state)
                assert record is not None and record.exit_code == 0, record
                sizes[mode.value] = (state / "json.log").stat().st_size
                drops[mode.value] = record.dropped_log_lines
                subprocess.run(["runc", "--root", str(root), "delete", cid], check=False)
                shutil.rmtree(state, ignore_errors=True)
        best = {k: min(v) for k, v in results.items()}
        for name, secs in best.items():
            print(f"{name:>13}: best {secs:.3f} s of {ns.repeat} ({size / secs / 1e6:.0f} MB/s in)")
        for mode in ("blocking", "non-blocking"):
            print(
                f"ratio {mode}/cat: {best[mode] / best['cat']:.2f}x;"
                f" json.log {sizes[mode] / 1e6:.1f} MB, dropped lines {drops[mode]},"
                f" monitor VmHWM {hwm[mode]} KiB"
            )
    finally:
        listed = subprocess.run(
            ["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True
        )
        for cid in listed.stdout.split():
            subprocess.run(["runc", "--root", str(root), "delete", "-f", cid], check=False)
        for state in states:
            shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
