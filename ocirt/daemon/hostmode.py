"""The manager of a daemon whose default bridge is disabled (Kanto's
`network.default_bridge.disable`). Pure beyond the Manager it extends.

Without a bridge only host mode can work. Kanto's own daemon lets a bridge-mode container
be created and fail at start; here every create path (local API, ContainerFactory,
SoftwareUpdatable, deployment descriptors) is refused at once with a 400 that says why.
"""

from __future__ import annotations

from ocirt.config.model import ContainerConfig, NetworkMode
from ocirt.errors import InvalidArgument
from ocirt.manager.manager import Manager
from ocirt.manager.types import ContainerView

BRIDGE_DISABLED = (
    "network mode bridge is not available: the default bridge is disabled "
    "(network.default_bridge.disable); create the container with network mode host"
)


class HostModeManager(Manager):
    """A Manager that refuses bridge-mode containers."""

    def create(
        self, image_ref: str, config: ContainerConfig, name: str | None = None
    ) -> ContainerView:
        if config.network_mode is not NetworkMode.HOST:
            raise InvalidArgument(BRIDGE_DISABLED)
        return super().create(image_ref, config, name)
