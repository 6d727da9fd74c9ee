"""The one port the things front end needs: the container manager. No I/O.

`ocirt.manager.Manager` satisfies it structurally; unit tests hand in a small in-memory
fake. Parameters are positional-only so that the real manager may name them freely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from ocirt.config.ditto import ContainerUpdate
from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.manager.types import ContainerView, Event, StopOptions

Unsubscribe = Callable[[], None]


class ContainerManager(Protocol):
    def create(
        self,
        image_ref: str,
        config: ContainerConfig,
        name: str | None = None,
        /,
        *,
        container_id: str | None = None,
        start: bool = False,
    ) -> ContainerView: ...

    def start(self, container_id: ContainerId, /) -> object: ...

    def stop(self, container_id: ContainerId, options: StopOptions, /) -> object: ...

    def pause(self, container_id: ContainerId, /) -> object: ...

    def resume(self, container_id: ContainerId, /) -> object: ...

    def rename(self, container_id: ContainerId, name: str, /) -> object: ...

    def update(self, container_id: ContainerId, update: ContainerUpdate, /) -> object: ...

    def remove(self, container_id: ContainerId, force: bool = False, /) -> object: ...

    def get(self, container_id: ContainerId, /) -> ContainerView: ...

    def list(self) -> Sequence[ContainerView]: ...

    def subscribe(self, callback: Callable[[Event], None], /) -> Unsubscribe: ...
