"""The twin commands by value: Kanto's feature shapes and event order (§2 event flow)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ocirt.config.defaults import fill_config
from ocirt.config.model import ContainerConfig, ContainerId, RestartPolicy, RestartPolicyType
from ocirt.config.state import Status
from ocirt.manager.types import ContainerState, ContainerView, Event, EventKind
from ocirt.things.protocol import Outbound, ThingId
from ocirt.things.twin import Twin, TwinTracker, state_value

THING = ThingId.for_device("ns:gw")


def view(status: Status = Status.CREATED, **state: Any) -> ContainerView:
    config = fill_config(ContainerConfig(), "web")
    return ContainerView(
        id=ContainerId("abc"),
        name="web",
        image_ref="docker.io/library/influxdb:1.8.4",
        config=config,
        created_at="2024-05-01T10:00:00.123456789Z",
        state=ContainerState(status=status, **state),
    )


TWIN = Twin(THING, "t")
FEATURE = "/features/Container:abc"


def decoded(messages: list[Outbound]) -> list[tuple[str, str, str, Any]]:
    out = []
    for message in messages:
        assert message.topic == "e/t/ns:gw:edge:containers"
        body = message.json()
        assert body["headers"] == {"response-required": False}
        out.append((body["topic"].rsplit("/", 1)[1], body["path"], body.get("value", "-")))
    return out  # type: ignore[return-value]


def test_created_event_sends_full_feature_then_state() -> None:
    tracker = TwinTracker(TWIN)
    messages = tracker.on_event(Event(EventKind.CREATED, view()))
    assert messages[0].json() == {
        "topic": "ns/gw:edge:containers/things/twin/commands/modify",
        "headers": {"response-required": False},
        "path": FEATURE,
        "value": {
            "definition": ["com.bosch.iot.suite.edge.containers:Container:1.5.0"],
            "properties": {
                "status": {
                    "name": "web",
                    "imageRef": "docker.io/library/influxdb:1.8.4",
                    "config": {
                        "domainName": "web-domain",
                        "hostName": "web-host",
                        "restartPolicy": {"type": "UNLESS_STOPPED"},
                        "networkMode": "BRIDGE",
                        "log": {
                            "type": "JSON_FILE",
                            "maxFiles": 2,
                            "maxSize": "100M",
                            "mode": "BLOCKING",
                        },
                    },
                    "createdAt": "2024-05-01T10:00:00.123456789Z",
                    "state": {"status": "CREATED", "pid": -1},
                }
            },
        },
    }
    assert decoded(messages[1:]) == [
        ("modify", f"{FEATURE}/properties/status/state", {"status": "CREATED", "pid": -1})
    ]


def test_event_flow_in_kanto_order() -> None:
    tracker = TwinTracker(TWIN)
    running = view(Status.RUNNING, pid=77, started_at="2024-05-01T10:00:01Z")
    renamed = replace(view(), name="db")
    policy = RestartPolicy(RestartPolicyType.ALWAYS)
    updated = replace(view(), config=replace(view().config, restart_policy=policy))
    exited = view(Status.EXITED, exit_code=137, error="OOM Killed", oom_killed=True,
                  finished_at="2024-05-01T10:00:02Z")  # fmt: skip
    events = [
        Event(EventKind.STATE, running),
        Event(EventKind.RENAMED, renamed),
        Event(EventKind.UPDATED, updated),
        Event(EventKind.STATE, exited),
        Event(EventKind.REMOVED, exited),
    ]
    messages = [m for e in events for m in tracker.on_event(e)]
    result = decoded(messages)
    state = f"{FEATURE}/properties/status/state"
    assert result[0] == ("modify", state, {"status": "RUNNING", "pid": 77,
                                           "startedAt": "2024-05-01T10:00:01Z"})  # fmt: skip
    assert result[1] == ("modify", f"{FEATURE}/properties/status/name", "db")
    assert result[2][1] == f"{FEATURE}/properties/status/config"
    assert result[2][2]["restartPolicy"] == {"type": "ALWAYS"}
    assert result[3] == ("modify", state, {"status": "EXITED", "pid": -1, "exitCode": 137,
                                           "error": "OOM Killed", "oomKilled": True,
                                           "finishedAt": "2024-05-01T10:00:02Z"})  # fmt: skip
    assert result[4][:2] == ("modify", state)
    assert result[4][2]["status"] == "DEAD"
    assert result[5] == ("delete", FEATURE, "-")
    assert len(result) == 6


def test_removed_after_dead_state_sends_dead_once() -> None:
    tracker = TwinTracker(TWIN)
    dead = view(Status.DEAD)
    messages = tracker.on_event(Event(EventKind.STATE, dead))
    messages += tracker.on_event(Event(EventKind.REMOVED, dead))
    assert [(a, path) for a, path, _ in decoded(messages)] == [
        ("modify", f"{FEATURE}/properties/status/state"),
        ("delete", FEATURE),
    ]


def test_state_omits_empty_members() -> None:
    assert state_value(ContainerState(status=Status.STOPPED, pid=0)) == {"status": "STOPPED"}


def test_republish_is_factory_then_containers() -> None:
    tracker = TwinTracker(TWIN)
    messages = tracker.republish([view(Status.RUNNING, pid=5)])
    assert messages[0].json()["path"] == "/features/ContainerFactory"
    assert messages[0].json()["value"] == {
        "definition": ["com.bosch.iot.suite.edge.containers:ContainerFactory:1.3.0"]
    }
    assert messages[1].json()["value"]["properties"]["status"]["state"] == {
        "status": "RUNNING",
        "pid": 5,
    }
