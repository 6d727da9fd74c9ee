"""Measure the per-container monitor: its RSS while a container logs, its json-file log
throughput against `cat` into a file, and what a slow disk does to a container in
blocking and non-blocking log mode. Every figure has its baseline in the same run.
Run as root:

    python3 bench/monitor_bench.py [--mbytes 200] [--repeat 5] [--before OLD-MONITOR]
                                   [--slow-mbytes 16] [--slow-bps 4194304]

Throughput: every run uses the same container, which `cat`s a pre-generated file of
base64 lines (76 chars + newline) from its rootfs, so the producer costs the same; the
baseline's stdout pipe goes to a host `cat > file` instead of the monitor. Two times are
reported per run:
  container  from just before the container's first write to just after its last one,
             read inside the container (busybox `adjtimex`, microseconds); this is what
             a logging application feels.
  done       from `runc start` until the consumer is finished: `cat` exited, or the
             monitor wrote its exit record, which it does only after fsync()ing the log
             (`cat` does not fsync).
`--before PATH` runs another monitor binary (e.g. one built from an older commit) in the
same runs, through OCIRT_MONITOR.

It measures the ocirt (and its monitor) that its interpreter imports; a device's install
is `pip install .`: python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo,
then `cd /tmp && /tmp/v/bin/python /path/to/repo/bench/monitor_bench.py`.

Slow disk: the log goes to ext4 on a loop device whose writes the block layer throttles
(cgroup v1 blkio.throttle.write_bps_device, set in the root blkio cgroup because v1
attributes buffered writeback there), with the device's dirty-page allowance capped
(bdi strict_limit + max_bytes) so that writers are held to the disk's speed, as on a
small device with little RAM. Device-mapper's `delay` target would be the textbook
choice, but these kernels have no device-mapper. Everything is undone at the end, even
on failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import benchlib

from ocirt.config.model import LogDriver, LogMode
from ocirt.runtime.monitor import LogOptions, MonitorOptions, launch, read_exit_record

REPO = benchlib.REPO
TIMES = "/tmp/bench-times"
_STAMP = re.compile(r"time\.tv_sec:\s*(\d+)\s+time\.tv_usec:\s*(\d+)")


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


def producer(path: str) -> list[str]:
    """`cat path` between two clock reads taken inside the container."""
    script = f'a=$(adjtimex); cat {path}; b=$(adjtimex); echo "$a $b" > {TIMES}'
    return ["/bin/sh", "-c", script]


def container_seconds(rootfs: Path) -> float:
    """The producer's own time, from the stamps it left in its rootfs."""
    path = rootfs / TIMES.lstrip("/")
    stamps = [int(s) * 1_000_000 + int(u) for s, u in _STAMP.findall(path.read_text())]
    path.unlink()
    if len(stamps) != 2:
        raise RuntimeError(f"the producer left {len(stamps)} clock readings, not 2")
    return (stamps[1] - stamps[0]) / 1e6


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
        time.sleep(0.002)
    return peak


@contextlib.contextmanager
def monitor_binary(path: Path | None) -> Iterator[None]:
    """Run launch() with OCIRT_MONITOR set to path (None: the built-in monitor)."""
    saved = os.environ.get("OCIRT_MONITOR")
    if path is not None:
        os.environ["OCIRT_MONITOR"] = str(path)
    else:
        os.environ.pop("OCIRT_MONITOR", None)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OCIRT_MONITOR", None)
        else:
            os.environ["OCIRT_MONITOR"] = saved


@dataclass(frozen=True, slots=True)
class Run:
    container: float  # seconds, measured inside the container
    done: float  # seconds from `runc start` until the consumer finished
    dropped: int = 0
    log_bytes: int = 0
    hwm_kib: int = 0


class Bench:
    def __init__(self, work: Path, root: Path, rootfs: Path) -> None:
        self.work = work
        self.root = root
        self.rootfs = rootfs
        self.states: list[Path] = []

    def runc(self, *args: str, check: bool = True) -> None:
        subprocess.run(["runc", "--root", str(self.root), *args], check=check)

    def stopped(self, cid: str) -> bool:
        state = subprocess.run(
            ["runc", "--root", str(self.root), "state", cid], capture_output=True, check=True
        )
        return bool(json.loads(state.stdout)["status"] == "stopped")

    def with_pipe_to(self, args: list[str], sink: Path | None) -> Run:
        """The container's stdout straight to a host `cat > sink`, or to /dev/null."""
        cid = f"bench-{uuid.uuid4().hex[:8]}"
        bundle = make_bundle(self.work, self.rootfs, args, cid)
        os.sync()
        try:
            if sink is None:
                subprocess.run(
                    ["runc", "--root", str(self.root), "create", "--bundle", str(bundle), cid],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    check=True,
                )
                t0 = time.perf_counter()
                self.runc("start", cid)
                while not self.stopped(cid):
                    time.sleep(0.002)
                done = time.perf_counter() - t0
            else:
                with sink.open("wb") as out:
                    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=out)
                    assert cat.stdin is not None
                    subprocess.run(
                        ["runc", "--root", str(self.root), "create", "--bundle", str(bundle), cid],
                        stdin=subprocess.DEVNULL,
                        stdout=cat.stdin,
                        check=True,
                    )
                    cat.stdin.close()
                    t0 = time.perf_counter()
                    self.runc("start", cid)
                    cat.wait()
                    done = time.perf_counter() - t0
        finally:
            self.runc("delete", "-f", cid, check=False)
        size = sink.stat().st_size if sink is not None else 0
        if sink is not None:
            sink.unlink()
        return Run(container_seconds(self.rootfs), done, log_bytes=size)

    def with_monitor(self, args: list[str], log: LogOptions | None, binary: Path | None) -> Run:
        cid = f"bench-{uuid.uuid4().hex[:8]}"
        state = Path("/run") / f"ocirt-bench-{cid}"
        self.states.append(state)
        log = log or LogOptions(path=state / "json.log")
        opts = MonitorOptions(
            container_id=cid,
            bundle=make_bundle(self.work, self.rootfs, args, cid),
            state_dir=state,
            runtime_root=self.root,
            log=log,
        )
        os.sync()
        try:
            with monitor_binary(binary):
                handle = launch(opts)
            t0 = time.perf_counter()
            self.runc("start", cid)
            hwm = wait_exit(state, handle.monitor_pid)
            done = time.perf_counter() - t0
            record = read_exit_record(state)
            assert record is not None and record.exit_code == 0, record
        finally:
            self.runc("delete", "-f", cid, check=False)
        size = 0
        if log.path is not None:
            for path in log.path.parent.glob(log.path.name + "*"):
                size += path.stat().st_size
                path.unlink()
        shutil.rmtree(state, ignore_errors=True)
        return Run(container_seconds(self.rootfs), done, record.dropped_log_lines, size, hwm)

    def close(self) -> None:
        listed = subprocess.run(
            ["runc", "--root", str(self.root), "list", "-q"], capture_output=True, text=True
        )
        for cid in listed.stdout.split():
            self.runc("delete", "-f", cid, check=False)
        for state in self.states:
            shutil.rmtree(state, ignore_errors=True)


def write_payload(path: Path, mbytes: int) -> tuple[int, int]:
    """mbytes of base64 lines (77 bytes each); returns (bytes, lines)."""
    payload = base64.encodebytes(os.urandom(mbytes * 1_000_000 // 77 * 57))
    path.write_bytes(payload)
    return len(payload), payload.count(b"\n")


def rss_section(bench: Bench) -> None:
    script = "i=0; while [ $i -lt 400 ]; do echo tick $i; i=$((i+1)); sleep 0.005; done"
    for mode in (LogMode.BLOCKING, LogMode.NON_BLOCKING):
        cid = f"bench-{uuid.uuid4().hex[:8]}"
        state = Path("/run") / f"ocirt-bench-{cid}"
        bench.states.append(state)
        opts = MonitorOptions(
            container_id=cid,
            bundle=make_bundle(bench.work, bench.rootfs, ["/bin/sh", "-c", script], cid),
            state_dir=state,
            runtime_root=bench.root,
            log=LogOptions(path=state / "json.log", mode=mode),
        )
        handle = launch(opts)
        bench.runc("start", cid)
        peak = 0
        while read_exit_record(state) is None:
            try:
                peak = max(peak, rss_kib(handle.monitor_pid))
            except (OSError, RuntimeError):
                break
            time.sleep(0.01)
        bench.runc("delete", cid, check=False)
        print(f"monitor VmRSS peak while logging ({mode.value}): {peak} KiB")
    sleeper = subprocess.Popen(["sleep", "5"])
    time.sleep(0.2)
    print(f"baseline VmRSS of /bin/sleep: {rss_kib(sleeper.pid)} KiB")
    sleeper.kill()
    sleeper.wait()


def summarize(name: str, runs: list[Run], size: int, base: float) -> None:
    cont = [r.container for r in runs]
    done = [r.done for r in runs]
    extra = ""
    if runs[0].hwm_kib:
        extra = (
            f"  dropped {max(r.dropped for r in runs)} lines,"
            f" VmHWM {max(r.hwm_kib for r in runs)} KiB"
        )
    print(
        f"{name:>22}: container best {min(cont):.3f} s median {statistics.median(cont):.3f} s"
        f" ({size / min(cont) / 1e6:.0f} MB/s, {min(cont) / base:.2f}x cat);"
        f" done best {min(done):.3f} s median {statistics.median(done):.3f} s{extra}"
    )


def throughput_section(bench: Bench, mbytes: int, repeat: int, before: Path | None) -> None:
    size, lines = write_payload(bench.rootfs / "data.txt", mbytes)
    print(f"payload: {size / 1e6:.1f} MB in {lines} lines, best and median of {repeat}")
    args = producer("/data.txt")
    binaries: list[tuple[str, Path | None]] = [("", None)]
    if before is not None:
        binaries.insert(0, ("before ", before))
    runs: dict[str, list[Run]] = {}
    for _ in range(repeat):
        runs.setdefault("cat", []).append(bench.with_pipe_to(args, bench.work / "cat.out"))
        for label, binary in binaries:
            for mode in (LogMode.BLOCKING, LogMode.NON_BLOCKING):
                state_log = LogOptions(path=bench.work / "json.log", mode=mode)
                run = bench.with_monitor(args, state_log, binary)
                runs.setdefault(f"{label}{mode.value}", []).append(run)
    base = min(r.container for r in runs["cat"])
    for name, got in runs.items():
        summarize(name, got, size, base)
    (bench.rootfs / "data.txt").unlink()


DIRTY_ALLOWANCE = 2 * 1024 * 1024


@contextlib.contextmanager
def slow_disk(work: Path, bps: int, dirty_bytes: int) -> Iterator[Path]:
    """A mounted ext4 whose device writes at most bps bytes/s; yields the mount point."""
    image = work / "slow.img"
    mnt = work / "slow"
    with contextlib.ExitStack() as undo:  # undone in reverse order
        with image.open("wb") as f:
            f.truncate(256 << 20)
        undo.callback(image.unlink, missing_ok=True)
        # Inode tables and journal written now: lazy init would spend the slow
        # device's bandwidth in the background during the runs.
        mkfs = ["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0"]
        subprocess.run([*mkfs, str(image)], check=True)
        dev = subprocess.run(
            ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True
        ).stdout.strip()
        undo.callback(subprocess.run, ["losetup", "-d", dev], check=False)
        majmin = Path(f"/sys/class/block/{Path(dev).name}/dev").read_text().strip()
        bdi = Path("/sys/class/bdi") / majmin
        for knob in ("max_ratio_fine", "strict_limit"):
            undo.callback((bdi / knob).write_text, (bdi / knob).read_text().strip())
        (bdi / "strict_limit").write_text("1")
        (bdi / "max_bytes").write_text(str(dirty_bytes))
        mnt.mkdir()
        undo.callback(mnt.rmdir)
        subprocess.run(["mount", dev, str(mnt)], check=True)
        undo.callback(subprocess.run, ["umount", str(mnt)], check=False)
        throttle = Path("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device")
        throttle.write_text(f"{majmin} {bps}")
        # Lifted first on the way out, so unmounting flushes at full speed.
        undo.callback(throttle.write_text, f"{majmin} 0")
        yield mnt


def slow_section(bench: Bench, mbytes: int, bps: int, before: Path | None) -> None:
    size, lines = write_payload(bench.rootfs / "slow.txt", mbytes)
    args = producer("/slow.txt")
    print(
        f"slow disk: writes at {bps / 2**20:.1f} MiB/s, dirty allowance"
        f" {DIRTY_ALLOWANCE >> 20} MiB; payload {size / 1e6:.1f} MB in {lines} lines"
    )
    binaries: list[tuple[str, Path | None]] = [("", None)]
    if before is not None:
        binaries.insert(0, ("before ", before))
    with slow_disk(bench.work, bps, DIRTY_ALLOWANCE) as mnt:
        results = [
            ("stdout to /dev/null", bench.with_pipe_to(args, None)),
            ("log-driver none", bench.with_monitor(args, LogOptions(None, LogDriver.NONE), None)),
        ]
        for label, binary in binaries:
            for mode in (LogMode.NON_BLOCKING, LogMode.BLOCKING):
                log = LogOptions(path=mnt / "json.log", mode=mode)
                results.append((f"{label}{mode.value}", bench.with_monitor(args, log, binary)))
    for name, run in results:
        print(
            f"{name:>22}: container {run.container:.3f} s, done {run.done:.3f} s,"
            f" dropped {run.dropped} of {lines} lines, log {run.log_bytes / 1e6:.1f} MB"
        )
    (bench.rootfs / "slow.txt").unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mbytes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", type=Path, help="another ocirt-monitor to compare")
    parser.add_argument("--slow-mbytes", type=int, default=16)
    parser.add_argument("--slow-bps", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--skip", action="append", default=[], choices=["rss", "tput", "slow"])
    ns = parser.parse_args()
    print(benchlib.describe())
    work = Path(tempfile.mkdtemp(prefix="ocirt-bench-"))
    root = Path("/run") / f"ocirt-bench-{uuid.uuid4().hex[:8]}"
    rootfs = work / "rootfs"
    bench = Bench(work, root, rootfs)
    try:
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
        root.mkdir(parents=True)
        if "rss" not in ns.skip:
            rss_section(bench)
        if "tput" not in ns.skip:
            throughput_section(bench, ns.mbytes, ns.repeat, ns.before)
        if "slow" not in ns.skip:
            slow_section(bench, ns.slow_mbytes, ns.slow_bps, ns.before)
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
