"""runc driven through the per-container monitor: the manager's `Runtime`. Does I/O.

The monitor runs `runc run -d` and records the exit; every later verb is runc's
(`ocirt.runtime.runc`). What only runc and the monitor know stays here: the monitor's
options and handle file, runc's state root, its "not running" refusal and its memory
update document.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ocirt.atomic import remove_tree
from ocirt.config.model import ContainerDefinition, Resources
from ocirt.errors import NotFound, RuncError
from ocirt.runtime import monitor
from ocirt.runtime.runc import Runc, RuncState, is_not_running, memory_update, resolve_binary

_log = logging.getLogger(__name__)


class MonitoredRunc:
    """One runtime binary, one runc state root, and the socket monitors notify exits on.

    `binary` is the `runtime` setting: a name looked up on PATH here, once, or an
    absolute path used as given (`resolve_binary`); RuncError if the name is not found.
    """

    def __init__(
        self, root: Path, binary: str = "runc", *, notify_socket: Path | None = None
    ) -> None:
        self.runc = Runc(root, resolve_binary(binary))
        self.notify_socket = notify_socket
        self.runc.root.mkdir(parents=True, exist_ok=True)

    @property
    def root(self) -> Path:
        return self.runc.root

    def launch(
        self, definition: ContainerDefinition, bundle: Path, state_dir: Path, log_path: Path
    ) -> monitor.MonitorHandle:
        options = monitor.options_for(
            definition,
            bundle=bundle,
            state_dir=state_dir,
            log_path=log_path,
            runtime_root=self.runc.root,
            runtime=self.runc.binary,
            notify_socket=self.notify_socket,
        )
        return monitor.launch(options)

    def save_handle(self, handle: monitor.MonitorHandle) -> None:
        monitor.write_handle(handle)

    def kill(self, container_id: str, signal: str) -> bool:
        """Signal the container; False when it has no running process (any more)."""
        try:
            self.runc.kill(container_id, signal)
        except NotFound:
            return False
        except RuncError as exc:
            # The container may have exited between the caller's check and the signal.
            if is_not_running(exc):
                return False
            raise
        return True

    def pause(self, container_id: str) -> None:
        self.runc.pause(container_id)

    def resume(self, container_id: str) -> None:
        self.runc.resume(container_id)

    def delete(self, container_id: str) -> None:
        """Force-delete the runc container; none is not an error."""
        with contextlib.suppress(NotFound):
            self.runc.delete(container_id, force=True)

    def forget(self, container_id: str, state_dir: Path) -> None:
        """Before a new `runc run`: delete a runc container left from an earlier run, and
        empty the monitor's state dir (its exit record and handle are the last run's)."""
        # runc keeps a directory per container in its root; none means nothing to delete,
        # which saves a runc run on every start.
        if (self.runc.root / container_id).exists():
            self.delete(container_id)
        try:
            with os.scandir(state_dir) as entries:
                if next(entries, None) is None:
                    return  # empty, as create leaves it: nothing to remove
        except FileNotFoundError:
            pass
        remove_tree(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)

    def update_memory(self, container_id: str, resources: Resources) -> None:
        self.runc.update_memory(container_id, memory_update(resources))

    def read_exit(self, state_dir: Path) -> monitor.ExitRecord | None:
        return monitor.read_exit_record(state_dir)

    def alive(self, state_dir: Path) -> bool:
        handle = monitor.read_handle(state_dir)
        if handle is not None and monitor.watches(handle.monitor_pid, state_dir):
            return True
        # No handle (a damaged handle.json reads as none), or one naming a pid that is
        # not this container's monitor: look the monitor up before declaring the
        # container unwatched, which would get a healthy container killed.
        found = monitor.find_handle(state_dir)
        if found is None:
            return False
        if found != handle:
            _log.warning(
                "monitor handle %s was damaged; re-attached to monitor pid %d",
                state_dir / monitor.HANDLE_FILE,
                found.monitor_pid,
            )
            # Best effort: a full disk must not make a live monitor look dead.
            with contextlib.suppress(OSError):
                monitor.write_handle(found)
        return True

    def list(self) -> Sequence[RuncState]:
        # From runc's state files, not `runc list`: no process at every daemon start.
        return self.runc.states()
