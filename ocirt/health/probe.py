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

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
        try:
            done = subprocess.run(
                [*self._runc, "exec", container_id, *argv],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ProbeResult(-1, "", timed_out=True)
        return ProbeResult(done.returncode, done.stdout.decode(errors="replace"))
