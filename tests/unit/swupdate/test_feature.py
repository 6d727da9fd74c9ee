"""The feature's glue: answers, the feature at bootstrap, installedDependencies updates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ocirt.config.model import ContainerConfig
from ocirt.manager.types import Event, EventKind
from ocirt.swupdate.feature import SoftwareUpdatable
from ocirt.things.protocol import Command, Outbound, ThingId
from ocirt.things.twin import Twin
from tests.support.fake_manager import FakeManager

TWIN = Twin(ThingId.parse("ns:gw:edge:containers"), "t1")
IMAGE = "localhost/busybox:itest"


class NoSource:
    def fetch(self, url: str, partial: Path, size: int, /) -> bytes:
        raise AssertionError("nothing is downloaded here")


def command(operation: str, value: object) -> Command:
    return Command("SoftwareUpdatable", operation, value, True, None)


def bodies(messages: list[Outbound]) -> list[dict[str, object]]:
    assert all(m.topic == "e/t1/ns:gw:edge:containers" for m in messages)
    return [json.loads(m.payload) for m in messages]


def bound(feature: SoftwareUpdatable) -> list[Callable[[Twin], list[Outbound]]]:
    posted: list[Callable[[Twin], list[Outbound]]] = []
    feature.bind(posted.append)
    return posted


def test_answers(tmp_path: Path) -> None:
    feature = SoftwareUpdatable(FakeManager(), NoSource(), tmp_path / "j")
    assert feature.handle(command("install", {})).value == {
        "error": "messages:parameter.invalid",
        "status": 400,
        "message": "there are no SoftwareModules to be installed",
    }
    assert feature.handle(command("cancel", {})).value == {
        "error": "messages:subject.notfound",
        "status": 404,
        "message": "unsupported operation called [operationId = cancel]",
    }
    accepted = feature.handle(command("remove", {"software": [{"name": "x"}]}))
    assert accepted.status == 204
    # Journaled before the answer, so a restart still carries it out.
    assert [p.name for p in (tmp_path / "j").iterdir()] == ["op-00000001.json"]


def test_dependencies_follow_the_containers(tmp_path: Path) -> None:
    manager = FakeManager()
    first = manager.create(IMAGE, ContainerConfig(), "a")
    feature = SoftwareUpdatable(manager, NoSource(), tmp_path / "j")
    posted = bound(feature)
    (whole,) = bodies(feature.republish(TWIN))
    feature.close()
    assert whole["path"] == "/features/SoftwareUpdatable"
    assert whole["topic"] == "ns/gw:edge:containers/things/twin/commands/modify"
    status = whole["value"]["properties"]["status"]  # type: ignore[index]
    key = f"localhost%2Fbusybox.{first.id}:itest"
    assert status == {
        "softwareModuleType": "oci:container",
        "installedDependencies": {
            key: {"group": "localhost/busybox", "name": first.id, "version": "itest"}
        },
    }
    second = manager.create("other:1", ContainerConfig(), "b")
    # The runner's own notice and the manager's event for the same create: one update.
    feature.installed(second.id, second.image_ref)
    (update,) = bodies(posted.pop()(TWIN))
    assert update["path"] == "/features/SoftwareUpdatable/properties/status/installedDependencies"
    assert set(update["value"]) == {key, f"other.{second.id}:1"}  # type: ignore[arg-type]
    assert feature.on_event(TWIN, Event(EventKind.CREATED, second)) == []
    assert feature.on_event(TWIN, Event(EventKind.STATE, second)) == []
    (update,) = bodies(feature.on_event(TWIN, Event(EventKind.REMOVED, second)))
    assert set(update["value"]) == {key}  # type: ignore[arg-type]
    (empty,) = bodies(feature.on_event(TWIN, Event(EventKind.REMOVED, first)))
    assert "value" not in empty


def test_reports_are_published_failed_first(tmp_path: Path) -> None:
    from ocirt.swupdate import plan
    from ocirt.swupdate.model import ModuleId

    feature = SoftwareUpdatable(FakeManager(), NoSource(), tmp_path / "j")
    posted = bound(feature)
    feature.report(plan.module_failed("c", ModuleId("m", "1"), "boom", rejected=False))
    failed, last = bodies(posted.pop()(TWIN))
    assert failed["path"].endswith("/status/lastFailedOperation")  # type: ignore[union-attr]
    assert last["path"].endswith("/status/lastOperation")  # type: ignore[union-attr]
    assert (
        failed["value"]
        == last["value"]
        == {
            "correlationId": "c",
            "status": "FINISHED_ERROR",
            "softwareModule": {"name": "m", "version": "1"},
            "message": "boom",
        }
    )
