"""The `Containers` port of an activity, over the manager's public API. Does I/O.

`verify_activation` is ocirt's gate for ACTIVATE, the one `ocirt.health.gate` gives
deployment and SoftwareUpdatable too: the new container must keep running for
`activation_monitor` seconds, or, when its image has a health check, turn healthy within
max(start period, one probe's interval and timeout, activation_timeout).
"""

from __future__ import annotations

from typing import Protocol

from ocirt.config.ditto import ContainerUpdate
from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.health.gate import ActivationGate, Health, Interrupted
from ocirt.manager.types import ContainerView, Status, StopOptions
from ocirt.updateagent.desired import DesiredContainer
from ocirt.updateagent.settings import UpdateAgentSettings

__all__ = ["Health", "Interrupted", "Manager", "ManagerContainers"]


class Manager(Protocol):
    def create(
        self, image_ref: str, config: ContainerConfig, name: str | None = None, /
    ) -> ContainerView: ...

    def start(self, container_id: str, /) -> object: ...

    def stop(self, container_id: str, options: StopOptions, /) -> object: ...

    def resume(self, container_id: str, /) -> object: ...

    def rename(self, container_id: str, name: str, /) -> object: ...

    def update(self, container_id: str, update: ContainerUpdate, /) -> object: ...

    def remove(self, container_id: str, force: bool = False, /) -> object: ...

    def get(self, container_id: str, /) -> ContainerView: ...


class ManagerContainers:
    def __init__(
        self,
        manager: Manager,
        settings: UpdateAgentSettings,
        stop_timeout: float,
        health: Health | None = None,
    ) -> None:
        self._manager = manager
        self._settings = settings
        self._stop_timeout = stop_timeout
        self._gate = ActivationGate(
            manager,
            health,
            monitor=settings.activation_monitor,
            timeout=settings.activation_timeout,
        )

    def close(self) -> None:
        """Interrupt an activation check: the daemon is stopping (the journal keeps the
        activity, and the next start rolls it back)."""
        self._gate.close()

    def create(self, container: DesiredContainer, name: str, /) -> str:
        return str(self._manager.create(container.image_ref, container.config, name).id)

    def start(self, container_id: str, /) -> None:
        self._manager.start(container_id)

    def ensure_running(self, container_id: str, /) -> None:
        status = self._manager.get(container_id).state.status
        if status is Status.RUNNING:
            return
        if status is Status.PAUSED:
            self._manager.resume(container_id)
        else:
            self._manager.start(container_id)

    def is_active(self, container_id: str, /) -> bool:
        return self._manager.get(container_id).state.status.is_active

    def stop(self, container_id: str, /) -> None:
        self._manager.stop(container_id, StopOptions("SIGTERM", self._stop_timeout, True))

    def update(self, container_id: str, config: ContainerConfig, /) -> None:
        self._manager.update(
            container_id,
            ContainerUpdate(restart_policy=config.restart_policy, resources=config.resources),
        )

    def rename(self, container_id: str, name: str, /) -> None:
        self._manager.rename(container_id, name)

    def remove(self, container_id: str, /) -> None:
        self._manager.remove(ContainerId(container_id), True)

    def verify_activation(self, container_id: str, /) -> None:
        self._gate.verify(container_id)
