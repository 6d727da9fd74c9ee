"""The `Containers` port of an activity, over the manager's public API. Does I/O.

`verify_activation` is ocirt's gate for ACTIVATE: the new container must keep running
(same run: not exited, not restarted) for `activation_monitor` seconds, or, when its
image has a health check, turn healthy within max(start period, one probe's interval and
timeout, activation_timeout).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from ocirt.config.ditto import ContainerUpdate
from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.errors import OcirtError
from ocirt.manager.types import ContainerView, Status, StopOptions
from ocirt.updateagent.desired import DesiredContainer
from ocirt.updateagent.settings import UpdateAgentSettings

_POLL = 0.2


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


class Health(Protocol):
    """Health of containers whose image has a health check (`ocirt.health`)."""

    def verdict(self, container_id: str, /) -> tuple[str, float] | None:
        """(status, least wait) when the container has a health check: status is starting,
        healthy or unhealthy; the gate waits at least `least wait` seconds for healthy."""
        ...


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
        self._health = health
        self._closing = threading.Event()

    def close(self) -> None:
        """Interrupt an activation check: the daemon is stopping (the journal keeps the
        activity, and the next start rolls it back)."""
        self._closing.set()

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
        first = self._manager.get(container_id)
        started = first.state.started_at
        health = self._health.verdict(container_id) if self._health else None
        if health is None:
            deadline = time.monotonic() + self._settings.activation_monitor
        else:
            deadline = time.monotonic() + max(health[1], self._settings.activation_timeout)
        while True:
            view = self._manager.get(container_id)
            state = view.state
            if state.status is not Status.RUNNING or state.started_at != started:
                raise OcirtError(_not_running(view))
            if health is not None:
                health = self._health.verdict(container_id) if self._health else None
                status = health[0] if health else "healthy"
                if status == "healthy":
                    return
                if status == "unhealthy":
                    raise OcirtError(f"container {view.name} is unhealthy")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if health is None:
                    return
                raise OcirtError(
                    f"container {view.name} did not turn healthy in time ({health[0]})"
                )
            if self._closing.wait(min(remaining, _POLL)):
                raise Interrupted("the container manager is stopping")


class Interrupted(Exception):
    """Not an OcirtError on purpose: no failure status is reported and nothing is
    rolled back; the journal keeps the activity for the next start."""


def _not_running(view: ContainerView) -> str:
    state = view.state
    if state.status is Status.RUNNING:
        return f"container {view.name} restarted during its activation check"
    detail = f" with exit code {state.exit_code}" if state.status is Status.EXITED else ""
    error = f": {state.error}" if state.error else ""
    return (
        f"container {view.name} is {state.status.title.lower()}{detail} instead of running{error}"
    )
