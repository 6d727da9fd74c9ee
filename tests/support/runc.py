"""runc verbs only tests use (production runs `runc run -d` through the monitor): create,
start, exec and events on top of the production driver."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocirt.errors import RuncError
from ocirt.runtime.runc import Runc


@dataclass(frozen=True, slots=True)
class ExecResult:
    returncode: int
    stdout: str
    stderr: str


class RuncForTests(Runc):
    """The production driver plus the verbs with which tests run containers by hand."""

    def create(
        self,
        container_id: str,
        bundle: Path,
        *,
        pid_file: Path | None = None,
        console_socket: Path | None = None,
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> None:
        """`runc create`. The stdio fds given become the container's own (pass-through).

        Without them the container gets /dev/null in and discarded out. Its stdout must
        not be a pipe that we wait on: the container keeps it open (runc#1721).
        """
        args = ["create", "--bundle", str(bundle)]
        if pid_file is not None:
            args += ["--pid-file", str(pid_file)]
        if console_socket is not None:
            args += ["--console-socket", str(console_socket)]
        args.append(container_id)
        out = stdout if stdout is not None else subprocess.DEVNULL
        if stderr is None:
            # runc's own errors are needed; the container inherits this fd, so use a file.
            self._create_capturing_errors(args, stdin, out)
            return
        self._run(
            *args,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=stderr,
        )

    def _create_capturing_errors(self, args: list[str], stdin: int | None, stdout: int) -> None:
        import tempfile

        with tempfile.TemporaryFile() as errfile:
            try:
                self._run(
                    *args,
                    stdin=stdin if stdin is not None else subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=errfile.fileno(),
                )
            except RuncError as exc:
                errfile.seek(0)
                text = errfile.read().decode(errors="replace")
                raise RuncError(
                    "runc create failed", stderr=text, returncode=exc.returncode
                ) from exc

    def start(self, container_id: str) -> None:
        self._run("start", container_id)

    def events_stats(self, container_id: str) -> dict[str, Any]:
        """One `runc events --stats` sample: cpu, memory, pids, blkio of the container."""
        out = self._run("events", "--stats", container_id)
        try:
            event = json.loads(out)
        except json.JSONDecodeError as exc:
            raise RuncError(f"runc events printed no JSON: {out[:200]!r}") from exc
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            raise RuncError(f"runc events gave no stats: {out[:200]!r}")
        return data

    def exec(self, container_id: str, argv: Sequence[str]) -> ExecResult:
        """Run a process inside a running container and collect its output.

        A non-zero exit of the process is a result, not an error; runc's own failure
        (no such container, bad args) is a RuncError.
        """
        try:
            proc = subprocess.run(
                self._argv("exec", container_id, *argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuncError(f"{self.binary} exec could not run: {exc}") from exc
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0 and err.startswith(("time=", "exec failed")):
            raise RuncError(f"{self.binary} exec failed", stderr=err, returncode=proc.returncode)
        return ExecResult(proc.returncode, proc.stdout.decode(errors="replace"), err)
