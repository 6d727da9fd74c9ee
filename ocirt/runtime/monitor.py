"""Control of the per-container monitor (native/monitor, `ocirt-monitor`). Does I/O.

The monitor is a small C process per container, like conmon: it runs `runc run -d`
(`MonitorOptions.start`) or `runc create`, stays the container's subreaper, writes the
json-file log and leaves an exit record. It detaches from the launching process, so
containers outlive the daemon (docs/kanto-compatibility.md decision 10). After a `create`, `runc
start` is the launcher's job; every later verb is the manager's (runtime/runc.py).

Launch handshake: the monitor gets the write end of a pipe (`--sync-fd`) and writes two
JSON lines, `{"monitorPid":N}` at once and then `{"containerPid":N}` or
`{"error":..,"stderr":..,"runtimeExit":N}` once runc finished, then closes it. "stderr"
is runc's `--log` file (JSON lines) and whatever runc wrote on its stdio. The parsing of
those lines and of `exit.json` is pure and lives here beside the effects.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ocirt.config.model import ContainerDefinition, LogDriver, LogMode
from ocirt.config.sizes import parse_size
from ocirt.errors import MonitorError, RuncError

EXIT_RECORD = "exit.json"
HANDLE_FILE = "handle.json"
ATTACH_SOCKET = "attach.sock"
MONITOR_LOG = "monitor.log"
RUNTIME_LOG = "runtime.log"
# Unix socket paths (attach.sock, console.sock under the state dir) must fit sun_path.
_SUN_PATH_MAX = 107


@dataclass(frozen=True, slots=True)
class LogOptions:
    """How the monitor writes the container's output (Kanto's log config, in bytes)."""

    path: Path | None
    driver: LogDriver = LogDriver.JSON_FILE
    max_size: int = -1  # bytes; <= 0 never rotates
    max_files: int = 1
    mode: LogMode = LogMode.BLOCKING
    max_buffer: int = 1_000_000  # non-blocking only: bytes queued before lines are dropped


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    container_id: str
    bundle: Path
    state_dir: Path
    runtime_root: Path
    log: LogOptions
    runtime: str = "runc"
    pid_file: Path | None = None  # default: <state_dir>/container.pid
    tty: bool = False
    open_stdin: bool = False
    notify_socket: Path | None = None
    # `runc run -d` (create and start in one runc process) instead of `runc create`.
    start: bool = False
    # Tests only: the monitor sleeps this long before each log write, to stand in for a
    # slow disk when checking that non-blocking mode drops instead of stalling.
    test_write_delay_ms: int = 0

    @property
    def effective_pid_file(self) -> Path:
        return self.pid_file or self.state_dir / "container.pid"


@dataclass(frozen=True, slots=True)
class MonitorHandle:
    monitor_pid: int
    container_pid: int
    state_dir: Path = field(compare=False)

    @property
    def attach_socket(self) -> Path:
        """Bytes written to this unix stream socket reach the container's stdin."""
        return self.state_dir / ATTACH_SOCKET


@dataclass(frozen=True, slots=True)
class ExitRecord:
    exit_code: int  # the exit status, or 128 + signal
    signal: int | None
    finished_at: datetime
    oom_killed: bool
    dropped_log_lines: int
    container_pid: int


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What the monitor said on the sync pipe; error is None when create succeeded."""

    monitor_pid: int | None
    container_pid: int | None
    error: str | None = None
    runtime_stderr: str = ""
    runtime_exit: int | None = None


def monitor_binary() -> Path:
    """ocirt/libexec/ocirt-monitor next to the package; OCIRT_MONITOR overrides it."""
    override = os.environ.get("OCIRT_MONITOR")
    if override:
        return Path(override)
    return _packaged_monitor()


@functools.cache
def _packaged_monitor() -> Path:
    # resolve() stats every component: once, not at every launch and liveness check.
    return Path(__file__).resolve().parent.parent / "libexec" / "ocirt-monitor"


def monitor_argv(binary: Path, options: MonitorOptions, sync_fd: int) -> list[str]:
    """The monitor's command line. Pure."""
    for path in (options.bundle, options.state_dir, options.runtime_root):
        if not path.is_absolute():
            raise MonitorError(f"monitor paths must be absolute: {path}")
    if len(str(options.state_dir / ATTACH_SOCKET)) > _SUN_PATH_MAX:
        raise MonitorError(f"state dir path too long for a unix socket: {options.state_dir}")
    log = options.log
    argv = [
        str(binary),
        "--runtime",
        options.runtime,
        "--root",
        str(options.runtime_root),
        "--id",
        options.container_id,
        "--bundle",
        str(options.bundle),
        "--state-dir",
        str(options.state_dir),
        "--pid-file",
        str(options.effective_pid_file),
        "--log-driver",
        log.driver.value,
        "--log-max-size",
        str(log.max_size),
        "--log-max-files",
        str(log.max_files),
        "--log-mode",
        log.mode.value,
        "--log-max-buffer",
        str(log.max_buffer),
        "--sync-fd",
        str(sync_fd),
    ]
    if log.driver is LogDriver.JSON_FILE:
        if log.path is None or not log.path.is_absolute():
            raise MonitorError("the json-file log driver needs an absolute log path")
        argv += ["--log-path", str(log.path)]
    if options.tty:
        argv.append("--tty")
    if options.open_stdin:
        argv.append("--stdin")
    if options.notify_socket is not None:
        argv += ["--notify-socket", str(options.notify_socket)]
    if options.start:
        argv.append("--start")
    if options.test_write_delay_ms:
        argv += ["--test-write-delay-ms", str(options.test_write_delay_ms)]
    return argv


def _int_field(raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MonitorError(f"monitor sent a non-integer {key}: {value!r}")
    return value


def parse_sync(data: bytes) -> SyncReport:
    """Parse everything the monitor wrote on the sync pipe. Pure."""
    merged: dict[str, Any] = {}
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise MonitorError(f"monitor sent a malformed report: {line!r}") from exc
        if not isinstance(obj, dict):
            raise MonitorError(f"monitor sent a malformed report: {line!r}")
        merged.update(obj)
    error = merged.get("error")
    return SyncReport(
        monitor_pid=_int_field(merged, "monitorPid"),
        container_pid=_int_field(merged, "containerPid"),
        error=str(error) if error is not None else None,
        runtime_stderr=runtime_text(str(merged.get("stderr", ""))),
        runtime_exit=_int_field(merged, "runtimeExit"),
    )


def runtime_text(raw: str) -> str:
    """runc's words from the text the monitor reported: the message of each JSON log
    line (runc --log-format json), other lines as they are. Pure."""
    out: list[str] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        msg = obj.get("msg") if isinstance(obj, dict) else None
        out.append(msg if isinstance(msg, str) else line)
    return "\n".join(out)


def parse_exit_record(data: bytes) -> ExitRecord:
    """Parse exit.json. Pure; a damaged record is a MonitorError."""
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        finished = datetime.fromisoformat(str(raw["finishedAt"]))
        exit_code = _int_field(raw, "exitCode")
        if exit_code is None:
            raise KeyError("exitCode")
        return ExitRecord(
            exit_code=exit_code,
            signal=_int_field(raw, "signal"),
            finished_at=finished,
            oom_killed=raw.get("oomKilled") is True,
            dropped_log_lines=_int_field(raw, "droppedLogLines") or 0,
            container_pid=_int_field(raw, "containerPid") or 0,
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise MonitorError(f"damaged exit record: {data[:200]!r}") from exc


def read_exit_record(state_dir: Path) -> ExitRecord | None:
    """The container's exit record, or None while it has not exited."""
    try:
        data = (state_dir / EXIT_RECORD).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MonitorError(f"cannot read {state_dir / EXIT_RECORD}: {exc}") from exc
    return parse_exit_record(data)


def is_alive(monitor_pid: int) -> bool:
    """Whether that pid is still a running ocirt monitor (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{monitor_pid}/stat").read_text()
    except OSError:
        return False
    # comm sits in parentheses and may itself contain ") ", so split at the last one.
    comm = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat[stat.rfind(")") + 2 :][:1]
    return comm == monitor_binary().name[:15] and state not in ("Z", "X", "")


def _read_until_eof(fd: int, deadline: float) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)


def _monitor_log_tail(state_dir: Path) -> str:
    try:
        return (state_dir / MONITOR_LOG).read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def _runtime_environment() -> dict[str, str]:
    """The daemon's environment minus systemd's NOTIFY_SOCKET (ours under Type=notify):
    runc passes that socket to the container and `runc run -d` then waits for the
    container's own READY=1, which a normal container never sends."""
    return {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}


def launch(options: MonitorOptions, *, timeout: float = 60.0) -> MonitorHandle:
    """Start a monitor that runs `runc run -d` (or `runc create`); return once runc is
    done, i.e. the container runs (or waits for `runc start`).

    Raises RuncError with runc's messages when runc fails, MonitorError when the monitor
    itself cannot run or does not answer within `timeout` seconds (it is then killed).
    """
    binary = monitor_binary()
    if not os.access(binary, os.X_OK):
        raise MonitorError(f"monitor binary not found or not executable: {binary}")
    try:
        options.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonitorError(f"cannot create state dir {options.state_dir}: {exc}") from exc
    read_fd, write_fd = os.pipe()
    try:
        argv = monitor_argv(binary, options, write_fd)
        try:
            with open(options.state_dir / MONITOR_LOG, "ab") as errlog:
                proc = subprocess.Popen(
                    argv,
                    pass_fds=(write_fd,),
                    env=_runtime_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errlog,
                    # setsid before exec: the monitor then detaches with one fork, not two.
                    start_new_session=True,
                )
        except OSError as exc:
            raise MonitorError(f"cannot run {binary}: {exc}") from exc
        finally:
            os.close(write_fd)
        data, complete = _read_until_eof(read_fd, time.monotonic() + timeout)
        # The first process only forks and exits; the monitor proper is its child.
        # It holds the sync fd until it exits, so after EOF this wait is immediate; waited
        # for only now, it costs nothing on the way to the container's start.
        if not complete:
            with contextlib.suppress(OSError):
                proc.kill()
        first_status = proc.wait()
    finally:
        os.close(read_fd)
    report = parse_sync(data)
    if not complete:
        if report.monitor_pid is not None and is_alive(report.monitor_pid):
            os.kill(report.monitor_pid, signal.SIGKILL)
        raise MonitorError(
            f"monitor for container {options.container_id} did not report within {timeout} s"
        )
    if report.error is not None:
        if report.runtime_exit is not None and report.runtime_exit >= 0:
            verb = "run" if options.start else "create"
            raise RuncError(
                f"{os.path.basename(options.runtime)} {verb} failed"
                f" for container {options.container_id}",
                stderr=report.runtime_stderr,
                returncode=report.runtime_exit,
            )
        raise MonitorError(f"monitor for container {options.container_id} failed: {report.error}")
    if report.monitor_pid is None or report.container_pid is None:
        detail = _monitor_log_tail(options.state_dir).strip()
        raise MonitorError(
            f"monitor for container {options.container_id} exited ({first_status})"
            f" without a report{': ' + detail if detail else ''}"
        )
    return MonitorHandle(report.monitor_pid, report.container_pid, options.state_dir)


def options_for(
    definition: ContainerDefinition,
    *,
    bundle: Path,
    state_dir: Path,
    log_path: Path,
    runtime_root: Path,
    runtime: str = "runc",
    notify_socket: Path | None = None,
) -> MonitorOptions:
    """The monitor's options for running a container of `definition` (`runc run -d`);
    the log config's size strings become bytes here. Pure."""
    log = definition.config.log
    json_file = log.driver is LogDriver.JSON_FILE
    return MonitorOptions(
        container_id=definition.id,
        bundle=bundle,
        state_dir=state_dir,
        runtime_root=runtime_root,
        runtime=runtime,
        log=LogOptions(
            path=log_path if json_file else None,
            driver=log.driver,
            max_size=parse_size(log.max_size) if json_file and log.max_size else -1,
            max_files=max(log.max_files, 1),
            mode=log.mode,
            max_buffer=(
                parse_size(log.max_buffer_size)
                if log.mode is LogMode.NON_BLOCKING and log.max_buffer_size
                else 1_000_000
            ),
        ),
        tty=definition.config.tty,
        open_stdin=definition.config.open_stdin,
        notify_socket=notify_socket,
        start=True,
    )


def write_handle(handle: MonitorHandle) -> None:
    """Record the monitor's and the container's pids in the state dir (`handle.json`)."""
    from ocirt.atomic import Durability, write_atomic

    write_atomic(
        handle.state_dir / HANDLE_FILE,
        json.dumps(
            {"monitorPid": handle.monitor_pid, "pid": handle.container_pid}, separators=(",", ":")
        )
        + "\n",
        # Needed after a manager crash, which keeps the page cache; after a power cut
        # the container is gone anyway.
        durability=Durability.CRASH,
    )


def read_handle(state_dir: Path) -> MonitorHandle | None:
    """The handle `write_handle` left, or None when there is none or it is damaged."""
    try:
        raw = json.loads((state_dir / HANDLE_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    monitor_pid, pid = _pid(raw.get("monitorPid")), _pid(raw.get("pid"))
    if monitor_pid is None:
        return None
    return MonitorHandle(monitor_pid, pid or 0, state_dir)


def read_monitor_pid(state_dir: Path) -> int | None:
    handle = read_handle(state_dir)
    return handle.monitor_pid if handle is not None else None


def watches(monitor_pid: int, state_dir: Path) -> bool:
    """Whether that pid is a live monitor of `state_dir` (its `--state-dir` argument):
    a pid of a dead monitor may have been reused by the monitor of another container."""
    if not is_alive(monitor_pid):
        return False
    try:
        argv = Path(f"/proc/{monitor_pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    try:
        at = argv.index(b"--state-dir")
    except ValueError:
        return False
    return at + 1 < len(argv) and argv[at + 1] == os.fsencode(state_dir)


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def _proc_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def find_handle(state_dir: Path) -> MonitorHandle | None:
    """The monitor of `state_dir` and its container, found in /proc, for a `handle.json`
    that is missing or damaged (a bad flash page). The monitor is the subreaper of the
    init whose pid it wrote to the pid file, so it is that pid's parent; when the pid
    file is damaged too, the monitor is looked for by its `--state-dir` among all
    processes. None when no monitor watches `state_dir` any more."""
    container_pid = 0
    with contextlib.suppress(OSError, ValueError):
        container_pid = int((state_dir / "container.pid").read_text().strip() or 0)
    parent = _parent(container_pid) if container_pid > 0 else None
    if parent is not None and watches(parent, state_dir):
        return MonitorHandle(parent, container_pid, state_dir)
    for pid in _proc_pids():
        if watches(pid, state_dir):
            # The pid file did not name a child of this monitor: the container pid is
            # not known (the handle's container pid is informative only).
            return MonitorHandle(pid, 0, state_dir)
    return None


def _pid(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
