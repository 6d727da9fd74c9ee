"""Which action brings each container to its desired state. Pure: no I/O.

Kanto's `DetermineUpdateAction` (CM `util/containers_compare.go`) and the messages of
`GetActionMessage`. Host and domain names are not compared, as in Kanto.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from ocirt.config.model import ContainerConfig
from ocirt.manager.types import ContainerView
from ocirt.updateagent.desired import DesiredContainer, DesiredState


class ActionType(Enum):
    CHECK = "check"
    CREATE = "create"
    RECREATE = "recreate"
    UPDATE = "update"
    DESTROY = "destroy"


MESSAGES = {
    ActionType.CHECK: (
        "No changes detected, existing container will be check only if it is running."
    ),
    ActionType.CREATE: "New container will be created and started.",
    ActionType.RECREATE: "Existing container will be destroyed and replaced by a new one.",
    ActionType.UPDATE: "Existing container will be updated with new configuration.",
    ActionType.DESTROY: "Existing container will be destroyed, no longer needed.",
}


@dataclass(frozen=True, slots=True)
class Identified:
    """One container's action: `desired` is None for destroy, `current` None for create."""

    name: str
    type: ActionType
    version: str
    desired: DesiredContainer | None
    current: ContainerView | None


def _same_set(a: Iterable[Hashable], b: Iterable[Hashable]) -> bool:
    # Kanto's compareSliceSet: same length and each element found in the other.
    la, lb = list(a), list(b)
    return len(la) == len(lb) and set(la) == set(lb)


def determine(
    current: ContainerConfig, current_image: str, desired: DesiredContainer
) -> ActionType:
    new = desired.config
    if current_image != desired.image_ref:
        return ActionType.RECREATE
    if not _same_set(current.mount_points, new.mount_points):
        return ActionType.RECREATE
    if current.cmd != new.cmd or not _same_set(current.env, new.env):
        return ActionType.RECREATE
    if (current.tty, current.open_stdin) != (new.tty, new.open_stdin):
        return ActionType.RECREATE
    if (
        current.privileged != new.privileged
        or current.network_mode != new.network_mode
        or not _same_set(current.devices, new.devices)
        or not _same_set(current.extra_hosts, new.extra_hosts)
        or not _same_set(current.extra_capabilities, new.extra_capabilities)
        or not _same_set(current.port_mappings, new.port_mappings)
        or current.log != new.log
    ):
        return ActionType.RECREATE
    if current.resources != new.resources or current.restart_policy != new.restart_policy:
        return ActionType.UPDATE
    return ActionType.CHECK


def image_version(image_ref: str) -> str:
    """Kanto's findContainerVersion: the digest after @, else the tag, of the last path
    segment; "n/a" without either."""
    name = image_ref[image_ref.rfind("/") + 1 :]
    for sep in ("@", ":"):
        at = name.find(sep)
        if at != -1 and at != len(name) - 1:
            return name[at + 1 :]
    return "n/a"


def identify(
    desired: DesiredState, current: Sequence[ContainerView], system: Sequence[str]
) -> list[Identified]:
    """Kanto's Identify: one action per desired container (system ones skipped), then a
    destroy action per other container that is not a system container."""
    by_name = {view.name: view for view in current}  # names are unique
    # (docs/kanto-compatibility.md decision 8)
    actions = []
    for container in desired.containers:
        if container.name in system:
            continue
        view = by_name.pop(container.name, None)
        if view is None:
            kind = ActionType.CREATE
        else:
            kind = determine(view.config, view.image_ref, container)
        actions.append(Identified(container.name, kind, container.version, container, view))
    for view in by_name.values():
        if view.name not in system:
            actions.append(
                Identified(view.name, ActionType.DESTROY, image_version(view.image_ref), None, view)
            )
    return actions
