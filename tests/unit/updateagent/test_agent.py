"""The agent's message handling over the in-memory manager, with a recording transport."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from recording_wire import Wire

from ocirt.errors import OcirtError
from ocirt.manager.types import Status
from ocirt.updateagent.agent import UpdateAgent
from ocirt.updateagent.desired import to_container
from ocirt.updateagent.executor import ManagerContainers
from ocirt.updateagent.settings import UpdateAgentSettings
from ocirt.updateagent.topics import envelope
from tests.support.fake_manager import FakeManager

FEEDBACK = "containersupdate/desiredstatefeedback"
CURRENT = "containersupdate/currentstate"


@pytest.fixture
def world() -> Iterator[tuple[UpdateAgent, FakeManager, Wire]]:
    manager, wire = FakeManager(), Wire()
    settings = UpdateAgentSettings(enable=True, activation_monitor=0, republish_delay=0.01)
    agent = UpdateAgent(
        settings, manager, ManagerContainers(manager, settings, 1), wire.publish, "9.9"
    )
    agent.start()
    try:
        yield agent, manager, wire
    finally:
        agent.close()


def desired(*names: str, domain: str = "containers") -> dict[str, Any]:
    return {"domains": [{"id": domain, "components": [{"id": n, "version": "1.0"} for n in names]}]}


def send(agent: UpdateAgent, topic: str, activity: str, payload: Any) -> None:
    agent.on_message(f"containersupdate/{topic}", envelope(activity, 1, payload))


def test_current_state_at_connect_and_on_get(world: Any) -> None:
    agent, manager, wire = world
    wanted = to_container("web", "1", [], [])
    manager.create(wanted.image_ref, wanted.config, "web")
    agent.on_connected()
    send(agent, "currentstate/get", "ask-1", None)
    wire.wait(lambda: len([m for m in wire.messages if m[0] == CURRENT]) >= 2)
    first, second = [m for m in wire.messages if m[0] == CURRENT][:2]
    assert first[1]["activityId"].startswith("initial-current-state-")
    assert second[1]["activityId"] == "ask-1"
    assert first[2] and second[2]  # retained
    ids = [n["id"] for n in second[1]["payload"]["softwareNodes"]]
    assert ids == ["containers-update-agent", "containers:web"]


def test_identification_failure_sends_only_that(world: Any) -> None:
    agent, _, wire = world
    send(agent, "desiredstate", "a1", desired("x", domain="files"))
    wire.wait_status("a1", "IDENTIFICATION_FAILED")
    assert wire.feedback("a1") == [
        {
            "status": "IDENTIFICATION_FAILED",
            "message": "domain id mismatch - expecting containers, received files",
        }
    ]


def test_manager_driven_flow_and_foreign_commands(world: Any) -> None:
    agent, manager, wire = world
    send(agent, "desiredstate", "a1", desired("x"))
    wire.wait_status("a1", "IDENTIFIED")
    assert wire.statuses("a1") == ["IDENTIFYING", "IDENTIFIED"]
    identified = wire.feedback("a1")[1]
    assert identified["actions"][0]["message"] == "New container will be created and started."
    # A command of another activity is ignored.
    send(agent, "desiredstate/command", "other", {"command": "DOWNLOAD", "baseline": ""})
    for command in ("DOWNLOAD", "UPDATE", "ACTIVATE", "CLEANUP"):
        send(agent, "desiredstate/command", "a1", {"command": command, "baseline": "*"})
    wire.wait_status("a1", "COMPLETED")
    assert wire.feedback("other") == []
    (view,) = manager.list()
    assert (view.name, view.state.status) == ("x", Status.RUNNING)


def test_no_actions_is_completed_at_once(world: Any) -> None:
    agent, _, wire = world
    send(agent, "desiredstate", "a1", desired())
    wire.wait_status("a1", "COMPLETED")
    assert wire.statuses("a1") == ["IDENTIFYING", "IDENTIFIED", "COMPLETED"]


def test_current_state_republished_on_change(world: Any) -> None:
    _, manager, wire = world
    wanted = to_container("late", "1", [], [])
    manager.create(wanted.image_ref, wanted.config, "late")

    def republished() -> Any:
        for topic, body, _ in wire.messages:
            if topic == CURRENT and body["activityId"].startswith("current-state-"):
                return body
        return None

    body = wire.wait(republished)
    assert [n["id"] for n in body["payload"]["softwareNodes"]][1:] == ["containers:late"]


def test_autonomous_apply_rolls_back_a_failed_activation(world: Any) -> None:
    agent, manager, wire = world
    old = to_container("app", "1", [("env", "V=1")], [])
    old_id = manager.create(old.image_ref, old.config, "app").id
    manager.start(old_id)
    starts = 0
    real_start = manager.start

    def start_once(cid: Any) -> None:
        nonlocal starts
        starts += 1
        if starts == 1:
            raise OcirtError("exec format error")
        real_start(cid)

    manager.start = start_once  # type: ignore[method-assign]
    state = {
        "domains": [
            {
                "id": "containers",
                "components": [
                    {"id": "app", "version": "1", "config": [{"key": "env", "value": "V=2"}]}
                ],
            }
        ]
    }
    run = agent.apply_local(state)
    assert run.done.wait(10)
    assert run.outcome == "INCOMPLETE"
    assert [f["status"] for f in run.feedback] == [
        "IDENTIFYING", "IDENTIFIED", "DOWNLOADING", "DOWNLOAD_SUCCESS", "UPDATING",
        "UPDATE_SUCCESS", "ACTIVATING", "ACTIVATION_FAILURE", "ROLLBACK", "ROLLBACK_SUCCESS",
        "CLEANUP_SUCCESS", "INCOMPLETE",
    ]  # fmt: skip
    (view,) = manager.list()
    assert (view.id, view.name, view.config.env) == (old_id, "app", ("V=1",))
    assert view.state.status is Status.RUNNING
    assert wire.statuses(run.activity_id) == [f["status"] for f in run.feedback]


def test_system_containers_are_never_touched(world: Any) -> None:
    agent, manager, _ = world
    wanted = to_container("sys", "1", [], [])
    manager.create(wanted.image_ref, wanted.config, "sys")
    state = desired()
    state["domains"][0]["config"] = [{"key": "systemContainers", "value": "sys"}]
    run = agent.apply_local(state)
    assert run.done.wait(10)
    assert run.outcome == "COMPLETED"
    assert [v.name for v in manager.list()] == ["sys"]
