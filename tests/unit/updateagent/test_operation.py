"""The activity state machine over the in-memory manager (`ManagerContainers` adapter)."""

from __future__ import annotations

from typing import Any

import pytest

from ocirt.config.model import RestartPolicyType
from ocirt.errors import OcirtError
from ocirt.manager.types import Status
from ocirt.updateagent.desired import DesiredState, to_container
from ocirt.updateagent.executor import ManagerContainers
from ocirt.updateagent.identify import identify
from ocirt.updateagent.operation import Operation, refusal
from ocirt.updateagent.settings import UpdateAgentSettings
from tests.support.fake_manager import FakeManager


def container(name: str, **config: str) -> Any:
    return to_container(name, "1", list(config.items()), [])


class World:
    def __init__(self) -> None:
        self.manager = FakeManager()
        self.sent: list[dict[str, Any]] = []
        self.containers = ManagerContainers(
            self.manager, UpdateAgentSettings(activation_monitor=0), stop_timeout=1
        )

    def existing(self, name: str, **config: str) -> str:
        wanted = container(name, **config)
        view = self.manager.create(wanted.image_ref, wanted.config, name)
        self.manager.start(view.id)
        return view.id

    def operation(
        self, *wanted: Any, baselines: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ) -> Operation:
        state = DesiredState(tuple(wanted), baselines, None)
        found = identify(state, self.manager.list(), ())
        return Operation.identified(
            "act", "containers", found, baselines, self.containers, self.sent.append
        )

    def by_name(self) -> dict[str, Any]:
        return {v.name: v for v in self.manager.list()}

    def statuses(self) -> list[str]:
        return [str(m["status"]) for m in self.sent]


def test_order_table() -> None:
    assert refusal("DOWNLOAD", "IDENTIFIED") is None
    assert refusal("UPDATE", "IDENTIFIED") == (
        "UPDATE is possible only after status DOWNLOAD_SUCCESS is reported"
    )
    assert refusal("ACTIVATE", "DOWNLOAD_SUCCESS") == (
        "ACTIVATE is possible only after status UPDATE_SUCCESS is reported"
    )
    assert refusal("ROLLBACK", "IDENTIFIED") == (
        "ROLLBACK is possible only after status "
        "DOWNLOAD_SUCCESS|UPDATE_SUCCESS|ACTIVATION_FAILURE|ACTIVATION_SUCCESS is reported"
    )
    assert refusal("CLEANUP", "IDENTIFIED") is None


def test_full_flow_over_all_actions() -> None:
    world = World()
    recreate_id = world.existing("re", env="A=1")
    update_id = world.existing("up")
    check_id = world.existing("same")
    world.manager.stop(check_id, None)  # type: ignore[arg-type]
    destroy_id = world.existing("gone")
    op = world.operation(
        container("new"),
        container("re", env="A=2"),
        container("up", restartPolicy="always"),
        container("same"),
    )
    for command in ("DOWNLOAD", "UPDATE", "ACTIVATE", "CLEANUP"):
        op.execute(command, "")
    assert world.statuses() == [
        "DOWNLOADING", "DOWNLOADING", "DOWNLOAD_SUCCESS",
        "UPDATING", "UPDATING", "UPDATING", "UPDATE_SUCCESS",
        "ACTIVATING", "ACTIVATING", "ACTIVATING", "ACTIVATING", "ACTIVATION_SUCCESS",
        "CLEANUP_SUCCESS", "COMPLETED",
    ]  # fmt: skip
    assert op.finished and op.outcome == "COMPLETED"
    final = {a["component"]["id"]: (a["status"], a["message"]) for a in world.sent[-1]["actions"]}
    assert final == {
        "containers:new": ("ACTIVATION_SUCCESS", "New container instance is started."),
        "containers:re": ("ACTIVATION_SUCCESS", "New container instance is started."),
        "containers:up": (
            "ACTIVATION_SUCCESS",
            "Container instance is updated with new configuration.",
        ),
        "containers:same": ("ACTIVATION_SUCCESS", "Existing container instance is running."),
        "containers:gone": ("REMOVAL_SUCCESS", "Old container instance is removed."),
    }
    views = world.by_name()
    assert set(views) == {"new", "re", "up", "same"}
    assert views["re"].id != recreate_id and views["re"].config.env == ("A=2",)
    assert views["up"].id == update_id
    assert views["up"].config.restart_policy.type is RestartPolicyType.ALWAYS
    assert all(v.state.status is Status.RUNNING for v in views.values())
    assert destroy_id not in world.manager.views


def test_in_progress_feedback_carries_the_action() -> None:
    world = World()
    op = world.operation(container("a"))
    op.execute("DOWNLOAD", "")
    downloading, success = world.sent
    assert downloading == {
        "status": "DOWNLOADING",
        "actions": [
            {
                "component": {"id": "containers:a", "version": "1"},
                "status": "DOWNLOADING",
                "message": "New container will be created and started.",
            }
        ],
    }
    assert success["actions"][0]["status"] == "DOWNLOAD_SUCCESS"
    assert success["actions"][0]["message"] == "New container created."


def test_wrong_order_and_unknown_baseline_are_reported() -> None:
    world = World()
    op = world.operation(container("a"))
    op.execute("ACTIVATE", "")
    op.execute("DOWNLOAD", "nope")
    assert world.sent[0]["status"] == "ACTIVATION_FAILURE"
    assert world.sent[0]["message"] == (
        "ACTIVATE is possible only after status UPDATE_SUCCESS is reported"
    )
    assert (world.sent[1]["status"], world.sent[1]["message"], world.sent[1]["baseline"]) == (
        "DOWNLOAD_FAILURE",
        "Unknown baseline nope",
        "nope",
    )
    assert world.manager.list() == []  # nothing happened


def test_failed_activation_then_rollback_restores_the_old_container() -> None:
    world = World()
    old_id = world.existing("re", env="A=1")
    op = world.operation(container("re", env="A=2"))
    op.execute("DOWNLOAD", "")
    op.execute("UPDATE", "")
    assert world.manager.get(old_id).state.status is Status.STOPPED
    world.manager.fail_start = OcirtError("boom")
    op.execute("ACTIVATE", "")
    assert world.sent[-1]["status"] == "ACTIVATION_FAILURE"
    assert world.sent[-1]["actions"][0]["message"] == "boom"
    world.manager.fail_start = None
    op.execute("ROLLBACK", "")
    assert world.statuses()[-2:] == ["ROLLBACK", "ROLLBACK_SUCCESS"]
    assert world.sent[-1]["actions"][0] == {
        "component": {"id": "containers:re", "version": "1"},
        "status": "UPDATE_FAILURE",
        "message": "Update unsuccessful, but rollback succeeded - new container instance "
        "destroyed, old container instance restored.",
    }
    (view,) = world.manager.list()
    assert (view.id, view.name, view.config.env) == (old_id, "re", ("A=1",))
    assert view.state.status is Status.RUNNING
    op.execute("CLEANUP", "")
    assert world.statuses()[-2:] == ["CLEANUP_SUCCESS", "INCOMPLETE"]
    assert old_id in world.manager.views  # no cleanup after a rollback


def test_rollback_of_an_update_restores_the_old_config() -> None:
    world = World()
    cid = world.existing("up")
    op = world.operation(container("up", restartPolicy="no", memory="10M"))
    for command in ("DOWNLOAD", "UPDATE", "ACTIVATE", "ROLLBACK"):
        op.execute(command, "")
    config = world.manager.get(cid).config
    assert config.restart_policy.type is RestartPolicyType.UNLESS_STOPPED
    assert config.resources.memory == ""
    assert world.sent[-1]["actions"][0]["message"] == (
        "Update unsuccessful, but rollback succeeded - container configuration restored "
        "from older instance."
    )


def test_baselines_complete_one_by_one() -> None:
    world = World()
    world.existing("gone")
    op = world.operation(
        container("a"), container("b"), baselines=(("first", ("a",)), ("containers:b", ("b",)))
    )
    assert set(op.baselines) == {"containers:remove-components", "first", "containers:b"}
    for title in ("first", "containers:b", "containers:remove-components"):
        for command in ("DOWNLOAD", "UPDATE", "ACTIVATE"):
            op.execute(command, title)
            assert world.sent[-1]["baseline"] == title
        op.execute("CLEANUP", title)
    assert world.statuses()[-2:] == ["CLEANUP_SUCCESS", "COMPLETED"]
    assert set(world.by_name()) == {"a", "b"}


def test_download_failure_reports_the_error() -> None:
    world = World()
    world.existing("a")
    op = world.operation(container("a", env="X=1"))

    def failing_create(wanted: Any, name: str) -> str:
        raise OcirtError("pull failed")

    world.containers.create = failing_create  # type: ignore[method-assign]
    op.execute("DOWNLOAD", "")
    assert world.sent[-1]["status"] == "DOWNLOAD_FAILURE"
    assert world.sent[-1]["actions"][0]["status"] == "DOWNLOAD_FAILURE"
    assert world.sent[-1]["actions"][0]["message"] == "pull failed"


@pytest.mark.parametrize("title", ["", "*"])
def test_cleanup_of_everything_finishes(title: str) -> None:
    world = World()
    op = world.operation(container("a"))
    for command in ("DOWNLOAD", "UPDATE", "ACTIVATE", "CLEANUP"):
        op.execute(command, title)
    assert world.sent[-2].get("baseline", "") == title
    assert world.statuses()[-1] == "COMPLETED"
