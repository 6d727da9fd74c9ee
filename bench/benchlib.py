"""Shared parts of the benches: what they measure, the baselines they run beside ocirt.

Imported by the bench scripts as a sibling module (`python3 bench/X.py` puts bench/ first
on the path, never the repository root), so a bench measures the ocirt that the
interpreter has installed. A device installs it with `pip install .`; to measure that:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/X.py

`describe()` says which interpreter and which ocirt a run measured. Nothing here
imports ocirt at module level.

containerd (the runtime Kanto runs on) is a baseline: `Containerd` starts Debian's
`containerd` (1.6) as a private instance, with its own root, state, socket and config
under a temp dir (never the host's /var/lib/containerd or /run/containerd/containerd.sock),
and stops it by PID. Install it with hack/bench-setup.sh; it is not a service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUSYBOX_SERVE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def ocirt_install() -> tuple[str, str]:
    """(where ocirt is imported from, "installed" or "editable" or "source tree")."""
    import ocirt

    package = Path(ocirt.__file__).resolve().parent
    if package.parent == REPO:
        # An editable install (setuptools' finder) or the tree itself on the path.
        editable = any(
            type(f).__name__.startswith("_Editable")
            or getattr(f, "__module__", "").startswith("__editable__")
            for f in sys.meta_path
        )
        return str(package), "editable" if editable else "source tree"
    return str(package), "installed"


def describe() -> str:
    """One line naming the interpreter and the ocirt a bench measures. Also leaves the
    source tree when started inside it: the daemons and CLIs a bench starts with
    `python -m` would import ocirt from the working directory first."""
    cwd = Path.cwd().resolve()
    if cwd == REPO or REPO in cwd.parents:
        os.chdir("/")
    where, kind = ocirt_install()
    return f"measured: {sys.executable} (Python {sys.version.split()[0]}), ocirt {kind} at {where}"


def ocirt_cli() -> list[str]:
    """The `ocirt` script installed beside this interpreter (as a device runs it)."""
    script = Path(sys.executable).parent / "ocirt"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ocirt.cli.main"]


def mkrootfs(dest: Path) -> Path:
    subprocess.run(
        [str(REPO / "hack" / "mkrootfs.sh"), str(dest)], check=True, stdout=subprocess.DEVNULL
    )
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited at start")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}")


def vmrss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def loadavg() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def interleave(rounds: int, contenders: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each round runs every contender once, in turn (one warm-up round dropped), so a
    shared machine's drifting load falls on all of them alike. A contender returns the
    seconds it measured."""
    out: dict[str, list[float]] = {name: [] for name in contenders}
    for index in range(rounds + 1):
        for name, measure in contenders.items():
            elapsed = measure()
            if index:
                out[name].append(elapsed)
    return out


def timed(argv: list[str], **kw: object) -> float:
    """Wall seconds of one command, which must succeed (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    return time.perf_counter() - start


def remove_cgroup_dirs(name: str) -> None:
    """Remove the (empty) cgroup directories called `name`, in every hierarchy."""
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup", topdown=False):
        if name in dirnames:
            for sub, _dirs, _files in os.walk(Path(dirpath) / name, topdown=False):
                with contextlib.suppress(OSError):
                    os.rmdir(sub)


# ---- a local registry ----------------------------------------------------------------------


class Registry:
    """Debian's docker-registry on 127.0.0.1:<free port>, storage under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "registry.yml"
        conf.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
            f"http:\n  addr: {self.host}\n"
        )
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc, "docker-registry")

    def push_layout(self, layout: Path, tag: str, repo: str) -> str:
        """Push the OCI layout's image `tag` as <host>/<repo>; returns the reference."""
        ref = f"{self.host}/{repo}"
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{tag}",
             f"docker://{ref}"],
            check=True,
        )  # fmt: skip
        return ref

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def busybox_layout(work: Path) -> Path:
    """An OCI layout of a busybox rootfs, tag `itest` (hack/mkimage.py)."""
    rootfs = mkrootfs(work / "layout-rootfs")
    dest = work / "layout"
    subprocess.run(
        [sys.executable, str(REPO / "hack" / "mkimage.py"), str(dest), "itest", str(rootfs)],
        check=True,
        capture_output=True,
    )
    return dest


# ---- containerd ------------------------------------------------------------------------------


def containerd_missing() -> str | None:
    """Why containerd cannot be the baseline here, or None when it can."""
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            return f"{tool} not found: run hack/bench-setup.sh (apt-get install containerd)"
    return None


def containerd_version() -> str:
    out = subprocess.run(["containerd", "--version"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.split()[2:3]) or out.stdout.strip()


class Containerd:
    """A private containerd: `--config` of our own, root/state/socket under `base`.

    The config keeps containerd's defaults except the CRI plugin, which is disabled as in
    the config.toml of Docker's containerd.io package (Kanto uses containerd's own API,
    not CRI), and the paths, which all point under `base`, as do runc's state and ctr's
    FIFOs (`run_detached`). Its shims keep their sockets in /run/containerd/s/<hash of our
    socket path> (fixed in containerd 1.6), so they never meet the host's.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.namespace = f"ocirtbench{uuid.uuid4().hex[:6]}"
        self.address = str(base / "containerd.sock")
        self.root = base / "root"
        self.state = base / "state"
        self.config = base / "config.toml"
        self.log = base / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        base.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "version = 2\n"
            f'root = "{self.root}"\n'
            f'state = "{self.state}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.address}"\n'
            '[ttrpc]\n  address = ""\n'
            '[debug]\n  address = ""\n'
            '[metrics]\n  address = ""\n'
            "[plugins]\n"
            '  [plugins."io.containerd.internal.v1.opt"]\n'
            f'    path = "{base / "opt"}"\n'
        )

    def launch(self, env: dict[str, str] | None = None) -> None:
        """Start the containerd process, without waiting."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            ["containerd", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()

    def start(self, env: dict[str, str] | None = None) -> float:
        """Start containerd; seconds until its API answers (`ctr version`)."""
        t0 = time.perf_counter()
        self.launch(env)
        assert self.proc is not None
        deadline = time.monotonic() + 60
        while True:
            if os.path.exists(self.address):
                done = subprocess.run(
                    ["ctr", "--address", self.address, "version"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
                if done.returncode == 0:
                    return time.perf_counter() - t0
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("containerd did not answer")
            time.sleep(0.002)

    def stop(self) -> None:
        """SIGTERM containerd (by PID); shims and containers keep running, as with ocirt."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def ctr_argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", self.address, "--namespace", self.namespace, *args]

    def ctr(self, *args: str) -> str:
        done = subprocess.run(self.ctr_argv(*args), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def pids(self) -> list[int]:
        """containerd and its shims (children reparented to init are found by cmdline)."""
        assert self.proc is not None
        out = [self.proc.pid]
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv[0].endswith(b"containerd-shim-runc-v2") and (self.address.encode() in argv):
                    out.append(int(entry.name))
        return out

    def run_detached(self, image: str, cid: str, *, rootfs: Path | None = None) -> float:
        """`ctr run -d --net-host`; seconds it took."""
        source = ["--rootfs", str(rootfs)] if rootfs is not None else [image]
        # runc's state and ctr's stdio FIFOs under `base` too (their defaults are in
        # /run/containerd).
        private = ["--runc-root", str(self.base / "runc"), "--fifo-dir", str(self.base / "fifo")]
        argv = self.ctr_argv("run", "-d", "--net-host", *private, *source, cid, *BUSYBOX_SERVE)
        return timed(argv, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def remove(self, cid: str) -> None:
        with contextlib.suppress(RuntimeError):
            self.ctr("task", "kill", "-s", "SIGKILL", cid)
        for _ in range(200):
            try:
                self.ctr("task", "delete", cid)
                break
            except RuntimeError as exc:
                if "not found" in str(exc):
                    break
                time.sleep(0.02)
        with contextlib.suppress(RuntimeError):
            self.ctr("container", "delete", cid)

    def cleanup(self) -> None:
        """Remove every task, container, image and snapshot, stop containerd, delete `base`."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(RuntimeError):
                for cid in self.ctr("container", "ls", "-q").split():
                    self.remove(cid)
            with contextlib.suppress(RuntimeError):
                refs = self.ctr("images", "ls", "-q").split()
                if refs:
                    self.ctr("images", "rm", "--sync", *refs)
        self.stop()
        # Whatever is left mounted under our root (snapshots, rootfs of killed tasks).
        mounts = [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.base))
        ]
        for target in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
        remove_cgroup_dirs(self.namespace)
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def containerd(base: Path) -> Iterator[Containerd | None]:
    """A started private containerd, or None (with the reason printed) when not installed."""
    why = containerd_missing()
    if why is not None:
        print(f"containerd baseline not measured: {why}")
        yield None
        return
    instance = Containerd(base)
    try:
        instance.start()
        yield instance
    finally:
        instance.cleanup()
