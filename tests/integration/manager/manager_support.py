"""Configs of the manager suites. The environment, waiting and the event recorder are
shared (`tests.support`)."""

from __future__ import annotations

from ocirt.config.model import ContainerConfig, NetworkMode, RestartPolicy, RestartPolicyType
from ocirt.manager.manager import Manager
from ocirt.manager.types import ContainerView

# Exits on SIGTERM at once (PID 1 has no default action for it), else runs forever.
SERVE = ("sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done")
NO_RESTART = RestartPolicy(RestartPolicyType.NO)


def cfg(*cmd: str, **changes: object) -> ContainerConfig:
    """A host-network config (no bridge in these suites) running `cmd`."""
    values: dict[str, object] = {
        "network_mode": NetworkMode.HOST,
        "cmd": cmd or SERVE,
        "restart_policy": NO_RESTART,
    }
    values.update(changes)
    return ContainerConfig(**values)  # type: ignore[arg-type]


def status_of(mgr: Manager, container_id: str) -> str:
    view: ContainerView = mgr.get(container_id)
    return view.state.status.name
