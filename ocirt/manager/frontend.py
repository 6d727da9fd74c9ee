"""What the two front ends (the MQTT features, `ocirt.things.features`, and the local API,
`ocirt.daemon.localapi`) do the same way. No I/O of its own: it calls the manager.

One rule for `create` with `start` (Kanto's createWithConfig, features_container_factory.go):
the create stands even when the start fails; the container is then STOPPED with the
start's error in its state, and the answer is the container, not an error. The manager
keeps it (`Manager.create` with `start`), beside the create it stands on.
"""

from __future__ import annotations

from typing import Protocol

from ocirt.config.ditto import CreateRequest
from ocirt.config.model import ContainerConfig
from ocirt.manager.types import ContainerView


class CreatesContainers(Protocol):
    def create(
        self,
        image_ref: str,
        config: ContainerConfig,
        name: str | None = None,
        /,
        *,
        start: bool = False,
    ) -> ContainerView: ...


def create(manager: CreatesContainers, request: CreateRequest) -> ContainerView:
    """Create the container of a parsed create request (defaulted and validated once more
    with its id by the manager), and start it when asked; see the module docstring."""
    return manager.create(request.image_ref, request.config, request.name, start=request.start)
