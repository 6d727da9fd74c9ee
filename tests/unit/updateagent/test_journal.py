"""The activity journal and what the agent does with it after a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from recording_wire import Wire

from ocirt.manager.types import Status
from ocirt.updateagent.agent import UpdateAgent
from ocirt.updateagent.desired import to_container
from ocirt.updateagent.executor import ManagerContainers
from ocirt.updateagent.journal import Journal, dump, restore
from ocirt.updateagent.settings import UpdateAgentSettings
from ocirt.updateagent.topics import envelope
from tests.support.fake_manager import FakeManager

SETTINGS = UpdateAgentSettings(enable=True, activation_monitor=0, republish_delay=60)


def agent_for(manager: FakeManager, wire: Wire, journal: Journal) -> UpdateAgent:
    return UpdateAgent(
        SETTINGS, manager, ManagerContainers(manager, SETTINGS, 1), wire.publish, "1", journal
    )


def desired_app(env: str) -> dict[str, Any]:
    return {
        "domains": [
            {
                "id": "containers",
                "components": [
                    {"id": "app", "version": "1", "config": [{"key": "env", "value": env}]}
                ],
            }
        ]
    }


def old_app(manager: FakeManager) -> str:
    old = to_container("app", "1", [("env", "V=1")], [])
    cid = manager.create(old.image_ref, old.config, "app").id
    manager.start(cid)
    return cid


def command(agent: UpdateAgent, wire: Wire, name: str, final: str) -> None:
    agent.on_message(
        "containersupdate/desiredstate/command",
        envelope("a1", 1, {"command": name, "baseline": ""}),
    )
    wire.wait_status("a1", final)


def test_journal_round_trip(tmp_path: Path) -> None:
    manager, wire, journal = FakeManager(), Wire(), Journal(tmp_path)
    old_app(manager)
    agent = agent_for(manager, wire, journal)
    agent.start()
    try:
        agent.on_message("containersupdate/desiredstate", envelope("a1", 1, desired_app("V=2")))
        wire.wait_status("a1", "IDENTIFIED")
        command(agent, wire, "DOWNLOAD", "DOWNLOAD_SUCCESS")
        raw = journal.load()
        assert raw is not None and raw["activityId"] == "a1"
        operation, autonomous = restore(raw, {"containers": None, "send": print})
        assert not autonomous
        assert dump(operation, False) == raw
        (action,) = operation.actions
        assert action.new_id is not None and action.status == "DOWNLOAD_SUCCESS"
        assert action.desired is not None and action.desired.config.env == ("V=2",)
        assert action.current_config is not None and action.current_config.env == ("V=1",)
        command(agent, wire, "UPDATE", "UPDATE_SUCCESS")
        command(agent, wire, "ACTIVATE", "ACTIVATION_SUCCESS")
        command(agent, wire, "CLEANUP", "COMPLETED")
        assert journal.load() is None  # removed at the end
    finally:
        agent.close()


def test_a_restart_after_effects_rolls_back(tmp_path: Path) -> None:
    manager, wire, journal = FakeManager(), Wire(), Journal(tmp_path)
    old_id = old_app(manager)
    first = agent_for(manager, wire, journal)
    first.start()
    first.on_message("containersupdate/desiredstate", envelope("a1", 1, desired_app("V=2")))
    wire.wait_status("a1", "IDENTIFIED")
    command(first, wire, "DOWNLOAD", "DOWNLOAD_SUCCESS")
    command(first, wire, "UPDATE", "UPDATE_SUCCESS")
    first.close()  # the daemon "dies" here
    assert manager.get(old_id).state.status is Status.STOPPED
    before = len(wire.feedback("a1"))
    second = agent_for(manager, wire, journal)
    second.start()
    try:
        wire.wait_status("a1", "INCOMPLETE")
        after = wire.feedback("a1")[before:]
        assert after[0]["status"] == "ROLLBACK"
        assert after[0]["message"] == (
            "The container manager restarted during the update; rolling it back."
        )
        assert [f["status"] for f in after][-3:] == [
            "ROLLBACK_SUCCESS",
            "CLEANUP_SUCCESS",
            "INCOMPLETE",
        ]
        (view,) = manager.list()
        assert (view.id, view.name, view.state.status) == (old_id, "app", Status.RUNNING)
        assert journal.load() is None
    finally:
        second.close()


def test_a_restart_before_effects_resumes(tmp_path: Path) -> None:
    manager, wire, journal = FakeManager(), Wire(), Journal(tmp_path)
    first = agent_for(manager, wire, journal)
    first.start()
    first.on_message("containersupdate/desiredstate", envelope("a1", 1, desired_app("V=2")))
    wire.wait_status("a1", "IDENTIFIED")
    first.close()
    second = agent_for(manager, wire, journal)
    second.start()
    try:
        wire.wait(lambda: len(wire.statuses("a1")) >= 3)
        resumed = wire.feedback("a1")[2]
        assert resumed["status"] == "IDENTIFIED"
        assert resumed["message"] == "Resumed after a restart of the container manager."
        # The Update Manager's next command is accepted by the resumed activity.
        command(second, wire, "DOWNLOAD", "DOWNLOAD_SUCCESS")
        assert [v.name for v in manager.list()] == ["app"]
    finally:
        second.close()


def test_an_unreadable_journal_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "activity.json").write_text(json.dumps({"activityId": 5}))
    assert Journal(tmp_path).load() is None
    assert (tmp_path / "activity.bad").exists()
    assert not (tmp_path / "activity.json").exists()
