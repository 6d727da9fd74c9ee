"""The manager's stand-in while the daemon starts. Does I/O (reads the container records).

The local API opens before the daemon builds its heavy parts (image store, bridge and
firewall, recovery, MQTT): the first answers a client asks for, `list` and `get`, need
only the containers' records, which this reads from the store. Everything else (create,
start, logs, ...) waits until the recovered manager is attached, and then goes to it;
so do `list` and `get` from then on. Until recovery has run, a container shows the
state it was persisted with (an exit that happened while no daemon ran shows once the
manager has applied it, milliseconds later).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ocirt.config.defaults import fill_defaults
from ocirt.config.state import Status
from ocirt.errors import NotFound, Unavailable
from ocirt.manager.types import ContainerView

# How long a call waits for the manager; a start-up (recovery included) takes seconds.
STARTUP_WAIT = 120.0


class StartingManager:
    """Answers `list` and `get` from the records until `attach`; the rest waits for it."""

    def __init__(self, views: Sequence[ContainerView], wait: float = STARTUP_WAIT) -> None:
        self._views = sorted(views, key=lambda v: v.created_at)
        self._wait = wait
        self._ready = threading.Event()
        self._manager: Any = None

    @classmethod
    def load(cls, home_dir: Path) -> StartingManager:
        """The containers of the store under `home_dir` as the manager would list them
        before its recovery (half-created and removed ones are not shown: it deletes
        them)."""
        from ocirt.store.containers import ContainerStore

        views = []
        for stored in ContainerStore(home_dir).load_all().containers:
            state = stored.runtime.state
            if state.status in (Status.CREATING, Status.DEAD):
                continue
            definition, runtime = fill_defaults(stored.definition), stored.runtime
            views.append(
                ContainerView(
                    id=definition.id,
                    name=definition.name,
                    image_ref=definition.image_ref,
                    config=definition.config,
                    created_at=runtime.created,
                    state=state,
                    restart_count=runtime.restart_count,
                    manually_stopped=runtime.manually_stopped,
                    started_successfully_before=runtime.started_successfully_before,
                )
            )
        return cls(views)

    def attach(self, manager: Any) -> None:
        """From now on every call goes to `manager`."""
        self._manager = manager
        self._ready.set()

    def list(self) -> Sequence[ContainerView]:
        if self._ready.is_set():
            return self._manager.list()  # type: ignore[no-any-return]
        return list(self._views)

    def get(self, container_id: str) -> ContainerView:
        if self._ready.is_set():
            return self._manager.get(container_id)  # type: ignore[no-any-return]
        for view in self._views:
            if view.id == container_id:
                return view
        raise NotFound(f"no such container with id = {container_id} exists")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if not self._ready.wait(self._wait):
            raise Unavailable("the ocirt daemon is still starting")
        return getattr(self._manager, name)
