"""The runc driver: runs the OCI runtime binary with a --root of ocirt's own. Does I/O.

Only the verbs production uses: the monitor runs `runc run -d` (`ocirt.runtime.monitor`),
the manager's runtime (`ocirt.runtime.monitored`) does the rest. Tests that drive runc
by hand add create/start/exec/events in `tests/support/runc.py`.

Every failure becomes an `ocirt.errors.RuncError` that carries the runtime's stderr, so no
`CalledProcessError` or `OSError` from here ever reaches the manager. The binary is a
setting, so crun can stand in where it works (it speaks the same verbs, minus `events`).
"""

from __future__ import annotations

import builtins
import json
import os
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ocirt.config.model import Resources
from ocirt.config.sizes import parse_size
from ocirt.errors import InvalidArgument, NotFound, RuncError
from ocirt.runtime.signals import parse_signal


class RuncStatus(Enum):
    """Status values of `runc state` (runtime-spec runtime.md)."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class RuncState:
    id: str
    pid: int
    status: RuncStatus
    bundle: str
    created: str


@dataclass(frozen=True, slots=True)
class MemoryUpdate:
    """Values for `runc update`, in bytes; -1 means unlimited. None leaves a value as is."""

    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None


def _parse_state(raw: dict[str, Any]) -> RuncState:
    try:
        return RuncState(
            id=str(raw["id"]),
            pid=int(raw.get("pid") or 0),
            status=RuncStatus(raw["status"]),
            bundle=str(raw.get("bundle", "")),
            created=str(raw.get("created", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RuncError(f"unexpected runc state {raw!r}") from exc


def _state_from_file(container_id: str, raw: object, directory: Path) -> RuncState:
    """A RuncState from runc's state.json (see `Runc.states`)."""
    if not isinstance(raw, dict):
        return RuncState(container_id, 0, RuncStatus.STOPPED, "", "")
    pid, start = raw.get("init_process_pid"), raw.get("init_process_start")
    labels = (raw.get("config") or {}).get("labels") or []
    bundle = next((str(x)[7:] for x in labels if str(x).startswith("bundle=")), "")
    created = str(raw.get("created", ""))
    if not isinstance(pid, int) or pid <= 0 or not _alive_since(pid, start):
        return RuncState(container_id, 0, RuncStatus.STOPPED, bundle, created)
    if (directory / "exec.fifo").exists():
        status = RuncStatus.CREATED
    elif _frozen(raw.get("cgroup_paths")):
        status = RuncStatus.PAUSED
    else:
        status = RuncStatus.RUNNING
    return RuncState(container_id, pid, status, bundle, created)


def _alive_since(pid: int, start: object) -> bool:
    """Whether `pid` is a live (not zombie) process started at `start` (clock ticks)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rfind(")") + 2 :].split()
    return len(fields) > 19 and fields[0] not in ("Z", "X") and fields[19] == str(start)


def _frozen(cgroup_paths: object) -> bool:
    if not isinstance(cgroup_paths, dict):
        return False
    freezer = cgroup_paths.get("freezer")
    try:
        if isinstance(freezer, str) and freezer:
            return Path(freezer, "freezer.state").read_text().strip() in ("FROZEN", "FREEZING")
        unified = cgroup_paths.get("")
        if isinstance(unified, str) and unified:
            return Path(unified, "cgroup.freeze").read_text().strip() == "1"
    except OSError:
        pass
    return False


def _signal_name(sig: int | str) -> str:
    """The one parser (`ocirt.runtime.signals`); here its refusal is runc's error."""
    try:
        return parse_signal(sig)
    except InvalidArgument as exc:
        raise RuncError(exc.message) from exc


def memory_update(resources: Resources) -> MemoryUpdate:
    """The live `runc update` for a config's resources; "" or "-1" means unlimited (-1)."""

    def size(text: str) -> int:
        return -1 if not text or text == "-1" else parse_size(text)

    return MemoryUpdate(
        limit=size(resources.memory),
        reservation=size(resources.memory_reservation),
        swap=size(resources.memory_swap),
    )


def resolve_binary(binary: str) -> str:
    """The runtime binary as an absolute path, looked up once (at the daemon's start):
    every exec of it, the monitor's execvp included, then goes straight to the file
    instead of trying each PATH entry in turn. An absolute path is used as given; a
    name is looked up on PATH, as execvp would (a relative path with a slash is taken
    from the working directory)."""
    if os.path.isabs(binary):
        return binary
    import shutil  # the daemon has it loaded already (ocirt.atomic)

    found = shutil.which(binary)
    if found is None:
        raise RuncError(
            f"runtime binary {binary!r} not found on PATH"
            f" ({os.environ.get('PATH', os.defpath)}); set an absolute path"
        )
    return os.path.abspath(found)


def is_not_running(exc: RuncError) -> bool:
    """runc's refusal to signal a container that has exited meanwhile."""
    return "not running" in exc.message or "stopped" in exc.message


class Runc:
    """One runtime binary and one state root. Container ids are passed through verbatim."""

    def __init__(self, root: Path, binary: str = "runc", *, timeout: float = 60.0) -> None:
        self.root = Path(root)
        self.binary = binary
        self.timeout = timeout
        # Messages name the runtime as runc names itself ("runc: ..."), not by its path.
        self.name = os.path.basename(binary)

    def _argv(self, *args: str) -> list[str]:
        return [self.binary, "--root", str(self.root), *args]

    def _run(
        self,
        *args: str,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = None,
        stderr: int | None = None,
        input_data: bytes | None = None,
    ) -> str:
        """Run one verb and return its stdout; stdio may be handed to the container."""
        argv = self._argv(*args)
        capture_out = stdout is None
        capture_err = stderr is None
        try:
            proc = subprocess.run(
                argv,
                stdin=None if input_data is not None else stdin,
                input=input_data,
                stdout=subprocess.PIPE if capture_out else stdout,
                stderr=subprocess.PIPE if capture_err else stderr,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise RuncError(f"runtime binary {self.binary!r} not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise RuncError(f"{self.name} {args[0]} timed out after {self.timeout}s") from exc
        except OSError as exc:
            raise RuncError(f"{self.name} {args[0]} could not run: {exc}") from exc
        err = proc.stderr.decode(errors="replace") if capture_err and proc.stderr else ""
        if proc.returncode != 0:
            if "does not exist" in err or "container not found" in err.lower():
                raise NotFound(f"{self.name}: {err.strip()}")
            raise RuncError(f"{self.name} {args[0]} failed", stderr=err, returncode=proc.returncode)
        return proc.stdout.decode(errors="replace") if capture_out and proc.stdout else ""

    def kill(self, container_id: str, sig: int | str = "SIGTERM") -> None:
        self._run("kill", container_id, _signal_name(sig))

    def delete(self, container_id: str, *, force: bool = False) -> None:
        self._run("delete", *(["--force"] if force else []), container_id)

    def pause(self, container_id: str) -> None:
        self._run("pause", container_id)

    def resume(self, container_id: str) -> None:
        self._run("resume", container_id)

    def state(self, container_id: str) -> RuncState:
        out = self._run("state", container_id)
        try:
            raw = json.loads(out)
        except json.JSONDecodeError as exc:
            raise RuncError(f"runc state printed no JSON: {out[:200]!r}") from exc
        return _parse_state(raw)

    def list(self) -> list[RuncState]:
        if not self.root.exists():
            return []
        out = self._run("list", "--format", "json")
        try:
            raw = json.loads(out or "null")
        except json.JSONDecodeError as exc:
            raise RuncError(f"runc list printed no JSON: {out[:200]!r}") from exc
        return [_parse_state(item) for item in raw or []]

    def states(self) -> builtins.list[RuncState]:
        """What `runc list` reports, read from runc's state files and /proc instead of
        running runc (a Go process costs tens of milliseconds at every daemon start).

        runc's own rule (libcontainer's currentStatus): the init process is alive when
        /proc has its pid with the start time runc recorded and it is not a zombie; then it
        is created while `exec.fifo` exists, paused while its freezer cgroup is frozen,
        else running. A state file that cannot be read is reported stopped, for a forced
        delete; a directory without one is a container runc is still creating.
        """
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        out: builtins.list[RuncState] = []
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            directory = Path(entry.path)
            try:
                raw = json.loads((directory / "state.json").read_bytes())
            except FileNotFoundError:
                continue
            except (OSError, ValueError):
                out.append(RuncState(entry.name, 0, RuncStatus.STOPPED, "", ""))
                continue
            out.append(_state_from_file(entry.name, raw, directory))
        return out

    def update_memory(self, container_id: str, update: MemoryUpdate) -> None:
        """`runc update -r -` with a LinuxResources document, applied live."""
        memory: dict[str, int] = {}
        if update.limit is not None:
            memory["limit"] = update.limit
        if update.reservation is not None:
            memory["reservation"] = update.reservation
        if update.swap is not None:
            memory["swap"] = update.swap
        document = json.dumps({"memory": memory}).encode()
        self._run("update", "--resources", "-", container_id, input_data=document)
