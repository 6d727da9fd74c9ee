from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ocirt.config.model import ContainerId, Resources, RestartPolicy, RestartPolicyType
from ocirt.manager.types import ContainerView
from ocirt.updateagent.desired import DesiredState, to_container
from ocirt.updateagent.identify import MESSAGES, ActionType, identify, image_version


def desired(name: str, image: str = "", **config: str) -> Any:
    pairs = [(k, v) for k, v in config.items()]
    if image:
        pairs.append(("image", image))
    return to_container(name, "1", pairs, [])


def view_of(container: Any, cid: str = "") -> ContainerView:
    return ContainerView(
        ContainerId(cid or f"id-{container.name}"),
        container.name,
        container.image_ref,
        container.config,
        "2024-01-01T00:00:00Z",
    )


def one(current: Any, wanted: Any) -> ActionType:
    state = DesiredState((wanted,), (), None)
    (action,) = identify(state, [view_of(current)], ())
    return action.type


def test_messages_are_kantos() -> None:
    assert MESSAGES[ActionType.CREATE] == "New container will be created and started."
    assert MESSAGES[ActionType.RECREATE] == (
        "Existing container will be destroyed and replaced by a new one."
    )
    assert MESSAGES[ActionType.UPDATE] == (
        "Existing container will be updated with new configuration."
    )
    assert MESSAGES[ActionType.CHECK] == (
        "No changes detected, existing container will be check only if it is running."
    )
    assert MESSAGES[ActionType.DESTROY] == "Existing container will be destroyed, no longer needed."


def test_same_config_is_check_even_with_env_reordered() -> None:
    base = to_container("a", "1", [("env", "A=1"), ("env", "B=2")], [])
    shuffled = to_container("a", "1", [("env", "B=2"), ("env", "A=1")], [])
    assert one(base, shuffled) is ActionType.CHECK


@pytest.mark.parametrize(
    "change",
    [
        {"image": "other:2"},
        {"env": "A=2"},
        {"cmd": "true"},
        {"terminal": "true"},
        {"privileged": "true"},
        {"network": "host"},
        {"host": "x:1.1.1.1"},
        {"port": "80:80"},
        {"mount": "/a:/b"},
        {"logMaxFiles": "5"},
    ],
)
def test_recreate_when_anything_but_policy_or_resources_differs(change: dict[str, str]) -> None:
    assert one(desired("a"), desired("a", **change)) is ActionType.RECREATE


@pytest.mark.parametrize("change", [{"restartPolicy": "always"}, {"memory": "10M"}])
def test_update_for_restart_policy_or_resources(change: dict[str, str]) -> None:
    assert one(desired("a"), desired("a", **change)) is ActionType.UPDATE


def test_cmd_order_matters() -> None:
    a = to_container("a", "1", [("cmd", "x"), ("cmd", "y")], [])
    b = to_container("a", "1", [("cmd", "y"), ("cmd", "x")], [])
    assert one(a, b) is ActionType.RECREATE


def test_create_destroy_and_system_containers() -> None:
    keep, gone, system_one = desired("keep"), desired("gone"), desired("sys")
    new = desired("new")
    state = DesiredState((keep, new, replace(system_one, image_ref="changed:1")), (), None)
    current = [view_of(keep), view_of(gone), view_of(system_one)]
    actions = identify(state, current, ("sys",))
    assert [(a.name, a.type) for a in actions] == [
        ("keep", ActionType.CHECK),
        ("new", ActionType.CREATE),
        ("gone", ActionType.DESTROY),
    ]
    destroy = actions[2]
    assert destroy.desired is None and destroy.current is not None
    assert destroy.version == "1"  # the tag of gone:1


def test_update_compares_whole_policy_and_resources() -> None:
    a = desired("a", restartPolicy="on-failure", restartMaxRetries="1")
    b = desired("a", restartPolicy="on-failure", restartMaxRetries="2")
    assert one(a, b) is ActionType.UPDATE
    assert a.config.restart_policy == RestartPolicy(RestartPolicyType.ON_FAILURE, 1, 0)
    assert desired("a").config.resources == Resources()


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("reg.io:5000/ns/app:1.2", "1.2"),
        ("app@sha256:abc", "sha256:abc"),
        ("reg.io:5000/app", "n/a"),
        ("app:", "n/a"),
        ("", "n/a"),
    ],
)
def test_image_version(ref: str, version: str) -> None:
    assert image_version(ref) == version
