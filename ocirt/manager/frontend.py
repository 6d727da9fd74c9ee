"""What the two front ends (the MQTT features, `ocirt.things.features`, and the local API,
`ocirt.daemon.localapi`) do the same way. No I/O of its own: it calls the manager.

One rule for `create` with `start` (Kanto's createWithConfig, features_container_factory.go):
the create stands even when the start fails; the container is then STOPPED with the
start's error in its state, and the answer is the container, not an error.
"""

from __future__ import annotations

import logging
from typing import Protocol

from ocirt.config.ditto import CreateRequest
from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.errors import OcirtError
from ocirt.manager.types import ContainerView

log = logging.getLogger(__name__)


class CreatesContainers(Protocol):
    def create(
        self, image_ref: str, config: ContainerConfig, name: str | None = None, /
    ) -> ContainerView: ...

    def start(self, container_id: ContainerId, /) -> object: ...

    def get(self, container_id: ContainerId, /) -> ContainerView: ...


def create(manager: CreatesContainers, request: CreateRequest) -> ContainerView:
    """Create the container of a parsed create request (defaulted and validated once more
    with its id by the manager), then start it when asked; see the module docstring."""
    view = manager.create(request.image_ref, request.config, request.name)
    if not request.start:
        return view
    try:
        manager.start(view.id)
    except OcirtError:
        # Kanto replies with the id even when the start fails; the state shows why, and
        # the manager logged it once.
        pass
    except Exception:
        log.exception("container %s was created but failed to start", view.id)
    return manager.get(view.id)
