"""Running one health probe in a container: the `ProbeRunner` port and its runc
implementation. Does I/O (runc exec).

`runc exec` (without a terminal) makes the probe a session and process-group leader in
the container and stays its parent (a child subreaper) until it exits. Killing the
`runc exec` client on a timeout leaves the probe running in the container, so a hung
check would pile up processes. On a timeout `RuncProbeRunner` therefore SIGKILLs the
probe's whole process group (its host pid comes from `--pid-file`), then reaps the
client. The output is read in bounded chunks: a chatty probe cannot fill the daemon's
memory.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

# What is kept of a probe's output (the health state keeps 4 KiB of text; a little more
# bytes covers multi-byte characters cut at the end).
MAX_OUTPUT_BYTES = 8192
# How long runc gets to start the probe, or to exit once its probe was killed.
GRACE = 5.0
_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class ProbeResult:
    exit_code: int
    output: str
    timed_out: bool = False


class ProbeRunner(Protocol):
    def run(self, container_id: str, argv: Sequence[str], timeout: float, /) -> ProbeResult:
        """Run `argv` in the container, bounded by `timeout` seconds. OSError when the
        probe cannot be started at all."""
        ...


class RuncProbeRunner:
    def __init__(self, runc_root: Path, runtime: str = "runc", grace: float = GRACE) -> None:
        self._runc = (runtime, "--root", str(runc_root))
        self._grace = grace

    def run(self, container_id: str, argv: Sequence[str], timeout: float, /) -> ProbeResult:
        with tempfile.TemporaryDirectory(prefix="ocirt-probe-") as tmp:
            pid_file = Path(tmp) / "pid"
            client = subprocess.Popen(
                [*self._runc, "exec", "--pid-file", str(pid_file), container_id, *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                assert client.stdout is not None
                output, finished = _read_bounded(client.stdout, time.monotonic() + timeout)
                if finished:
                    code = client.wait()
                    return ProbeResult(code, output.decode(errors="replace"))
                self._kill_probe(client, pid_file)
                return ProbeResult(-1, output.decode(errors="replace"), timed_out=True)
            finally:
                if client.poll() is None:
                    client.kill()
                client.wait()
                if client.stdout is not None:
                    client.stdout.close()

    def _kill_probe(self, client: subprocess.Popen[bytes], pid_file: Path) -> None:
        """SIGKILL the probe's process group in the container, then the client if it does
        not exit after its probe."""
        deadline = time.monotonic() + self._grace
        # runc writes the pid file (temp + rename) once the probe has started: give a slow
        # start its grace, else a probe started just after the client's death would stay.
        pid = _read_pid(pid_file)
        while pid is None and client.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
            pid = _read_pid(pid_file)
        if pid is not None and _parent_of(pid) == client.pid:
            # Still the client's child, so not reaped: the pid and its group id are ours.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            client.wait(max(0.0, deadline - time.monotonic()))


def _read_bounded(stream: IO[bytes], deadline: float) -> tuple[bytes, bool]:
    """The first MAX_OUTPUT_BYTES of `stream` until its end (True) or `deadline` (False);
    the rest is read and dropped, so the writer never blocks on a full pipe."""
    fileno = stream.fileno()
    kept = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fileno, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(kept), False
            if not selector.select(left):
                continue
            chunk = os.read(fileno, _CHUNK)
            if not chunk:
                return bytes(kept), True
            if len(kept) < MAX_OUTPUT_BYTES:
                kept += chunk[: MAX_OUTPUT_BYTES - len(kept)]


def _read_pid(pid_file: Path) -> int | None:
    try:
        text = pid_file.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.strip().isdigit() and int(text) > 0 else None


def _parent_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    return None
