"""The activation gate: is a container that was just started really up? Polls the manager.

One gate for every path that replaces or installs containers: the update agent's
ACTIVATE (`ocirt.updateagent.executor`), deployment descriptors (`ocirt.daemon.deployment`)
and SoftwareUpdatable installs (`ocirt.swupdate.runner`). The new container must keep
running (same run: not exited, not restarted) for `monitor` seconds or, when its image
has a health check, turn healthy within max(start period, one probe's interval and
timeout, `timeout`). A failure is an `ActivationFailed`, which each caller turns into
its own rollback.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from ocirt.config.model import ContainerId
from ocirt.errors import OcirtError
from ocirt.manager.types import ContainerView, Status

_POLL = 0.2


class Views(Protocol):
    def get(self, container_id: ContainerId, /) -> ContainerView: ...


class Health(Protocol):
    """Health of containers whose image has a health check (`ocirt.health.monitor`)."""

    def verdict(
        self, container_id: str, started_at: str | None = None, /
    ) -> tuple[str, float] | None:
        """(status, least wait) when the container has a health check: status is starting,
        healthy or unhealthy, of the run that began at `started_at` (default: the current
        one); the gate waits at least `least wait` seconds for healthy."""
        ...


class ActivationFailed(OcirtError):
    """The new container did not stay running, or did not turn healthy."""

    def __init__(self, message: str, *, unhealthy: bool = False) -> None:
        super().__init__(message)
        self.unhealthy = unhealthy


class Interrupted(Exception):
    """Not an OcirtError on purpose: the daemon is stopping, which is no verdict on the
    container; callers keep what they journaled for the next start."""


class ActivationGate:
    def __init__(
        self,
        manager: Views,
        health: Health | None = None,
        *,
        monitor: float = 5.0,
        timeout: float = 60.0,
    ) -> None:
        self._manager = manager
        self._health = health
        self._monitor = monitor
        self._timeout = timeout
        self._closing = threading.Event()

    def close(self) -> None:
        """Interrupt a check under way (and every later one): the daemon is stopping."""
        self._closing.set()

    def verify(self, container_id: str) -> None:
        """Return when the container passed; raise ActivationFailed or Interrupted."""
        cid = ContainerId(container_id)
        first = self._manager.get(cid)
        started = first.state.started_at
        health = self._health.verdict(container_id) if self._health else None
        if health is None:
            deadline = time.monotonic() + self._monitor
        else:
            deadline = time.monotonic() + max(health[1], self._timeout)
        while True:
            view = self._manager.get(cid)
            state = view.state
            if state.status is not Status.RUNNING or state.started_at != started:
                # The health monitor restarts an unhealthy container when its policy says
                # so: that run's own verdict is the reason, not the stop it caused.
                if health is not None and self._health is not None:
                    past = self._health.verdict(container_id, started)
                    if past is not None and past[0] == "unhealthy":
                        raise ActivationFailed(
                            f"container {view.name} is unhealthy", unhealthy=True
                        )
                raise ActivationFailed(not_running(view))
            if health is not None:
                health = self._health.verdict(container_id) if self._health else None
                status = health[0] if health else "healthy"
                if status == "healthy":
                    return
                if status == "unhealthy":
                    raise ActivationFailed(f"container {view.name} is unhealthy", unhealthy=True)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if health is None:
                    return
                raise ActivationFailed(
                    f"container {view.name} did not turn healthy in time ({health[0]})",
                    unhealthy=True,
                )
            if self._closing.wait(min(remaining, _POLL)):
                raise Interrupted("the container manager is stopping")


def not_running(view: ContainerView) -> str:
    state = view.state
    if state.status is Status.RUNNING:
        return f"container {view.name} restarted during its activation check"
    detail = f" with exit code {state.exit_code}" if state.status is Status.EXITED else ""
    error = f": {state.error}" if state.error else ""
    return (
        f"container {view.name} is {state.status.title.lower()}{detail} instead of running{error}"
    )
