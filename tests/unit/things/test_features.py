"""ContainerFactory and Container:<id> dispatch against an in-memory manager."""

from __future__ import annotations

from typing import Any

import pytest

from ocirt.config.model import RestartPolicyType
from ocirt.config.state import Status
from ocirt.errors import RuncError
from ocirt.manager.types import StopOptions
from ocirt.things import protocol as p
from ocirt.things.features import Features, FeatureSettings
from tests.support.fake_manager import FakeManager


def command(feature: str, operation: str, value: Any = None, has_value: bool = True) -> p.Command:
    return p.Command(feature, operation, value, has_value, None)


@pytest.fixture
def manager() -> FakeManager:
    return FakeManager()


@pytest.fixture
def features(manager: FakeManager) -> Features:
    return Features(manager)


def created(features: Features, start: bool = False) -> str:
    outcome = features.handle(
        command("ContainerFactory", "create", {"imageRef": "i", "start": start})
    )
    assert isinstance(outcome, p.Outcome)
    assert outcome.status == 200
    assert isinstance(outcome.value, str)
    return outcome.value


def error(outcome: object) -> tuple[int, str, str]:
    assert isinstance(outcome, p.Outcome), outcome
    assert isinstance(outcome.value, dict)
    return outcome.status, outcome.value["error"], outcome.value["message"]


def test_create_answers_the_new_id_and_starts(features: Features, manager: FakeManager) -> None:
    cid = created(features, start=True)
    assert manager.views[cid].state.status is Status.RUNNING
    assert [c[0] for c in manager.calls] == ["create", "start"]


def test_create_ignores_unknown_keys(features: Features, manager: FakeManager) -> None:
    value = {"imageRef": "img", "start": False, "cmd": ["x"]}
    outcome = features.handle(command("ContainerFactory", "create", value))
    assert isinstance(outcome, p.Outcome) and outcome.status == 200
    assert manager.calls[0][1] == "img"


def test_create_with_config_passes_name_and_config(
    features: Features, manager: FakeManager
) -> None:
    value = {
        "imageRef": "img",
        "name": "web",
        "start": False,
        "config": {"env": ["A=1"], "restartPolicy": {"type": "always"}},
    }
    outcome = features.handle(command("ContainerFactory", "createWithConfig", value))
    assert isinstance(outcome, p.Outcome) and outcome.status == 200
    _, image, config, name = manager.calls[0]
    assert (image, name) == ("img", "web")
    assert config.env == ("A=1",)  # type: ignore[attr-defined]
    assert config.restart_policy.type is RestartPolicyType.ALWAYS  # type: ignore[attr-defined]


def test_failed_start_still_answers_200(features: Features, manager: FakeManager) -> None:
    manager.fail_start = RuncError("runc create failed", stderr="boom")
    cid = created(features, start=True)
    # As the real manager (the contract suite holds both to it): stopped, with the error.
    assert manager.views[cid].state.status is Status.STOPPED
    assert manager.views[cid].state.error == "runc create failed: boom"


@pytest.mark.parametrize("operation", ["create", "createWithConfig"])
@pytest.mark.parametrize("value", [{"imageRef": ""}, {"start": True}])
def test_empty_image_ref_is_500(features: Features, operation: str, value: Any) -> None:
    outcome = features.handle(command("ContainerFactory", operation, value))
    assert error(outcome) == (500, "messages:execution.failed", "imageRef must be set")


def test_invalid_config_is_400_with_kantos_message(features: Features) -> None:
    value = {"imageRef": "i", "config": {"mountPoints": [{"source": "", "destination": ""}]}}
    outcome = features.handle(command("ContainerFactory", "createWithConfig", value))
    assert error(outcome) == (
        400,
        "messages:parameter.invalid",
        "source and destination must be set for a mount point",
    )


@pytest.mark.parametrize(
    "value", [None, "img", [1], {"imageRef": 5}, {"imageRef": "i", "start": "yes"}]
)
def test_create_values_of_the_wrong_type_are_400(features: Features, value: Any) -> None:
    status, code, _ = error(features.handle(command("ContainerFactory", "create", value)))
    assert (status, code) == (400, "messages:parameter.invalid")


def test_factory_unknown_operation(features: Features) -> None:
    assert error(features.handle(command("ContainerFactory", "destroy", {}))) == (
        404,
        "messages:subject.notfound",
        "unsupported operation destroy",
    )


def test_lifecycle_operations_answer_204(features: Features, manager: FakeManager) -> None:
    cid = created(features)
    feature = f"Container:{cid}"
    steps: list[tuple[str, Any, Status]] = [
        ("start", {}, Status.RUNNING),
        ("pause", None, Status.PAUSED),
        ("resume", None, Status.RUNNING),
        ("stop", {}, Status.STOPPED),
        ("start", {}, Status.RUNNING),
        ("stopWithOptions", {"signal": "SIGINT", "timeout": 3, "force": True}, Status.STOPPED),
    ]
    for operation, value, status in steps:
        outcome = features.handle(command(feature, operation, value, value is not None))
        assert outcome == p.Outcome.done(), operation
        assert manager.views[cid].state.status is status
    stops = [c for c in manager.calls if c[0] == "stop"]
    assert stops == [
        # A plain stop: SIGTERM, the manager's default timeout, then SIGKILL
        # (docs/kanto-compatibility.md decision 11).
        ("stop", cid, StopOptions("SIGTERM", None, True)),
        ("stop", cid, StopOptions("SIGINT", 3.0, True)),
    ]


def test_stop_with_options_defaults_and_numeric_signal(
    features: Features, manager: FakeManager
) -> None:
    cid = created(features, start=True)
    features.handle(command(f"Container:{cid}", "stopWithOptions", {"signal": 2}))
    # No timeout: the manager's default; no force: Kanto's false.
    assert manager.calls[-1] == ("stop", cid, StopOptions("2", None, False))


@pytest.mark.parametrize(
    ("operation", "value"),
    [
        ("stopWithOptions", "x"),
        ("stopWithOptions", {"timeout": "30"}),
        ("stopWithOptions", {"force": 1}),
        ("stopWithOptions", {"signal": True}),
        ("rename", 5),
        ("rename", None),
        ("remove", "true"),
        ("update", [1]),
        ("update", {"restartPolicy": "always"}),
    ],
)
def test_values_of_the_wrong_type_are_400(features: Features, operation: str, value: Any) -> None:
    cid = created(features, start=True)
    status, code, _ = error(features.handle(command(f"Container:{cid}", operation, value)))
    assert (status, code) == (400, "messages:parameter.invalid")


def test_rename_update_remove(features: Features, manager: FakeManager) -> None:
    cid = created(features)
    feature = f"Container:{cid}"
    assert features.handle(command(feature, "rename", "db")) == p.Outcome.done()
    assert manager.views[cid].name == "db"
    update = {"restartPolicy": {"type": "on-failure", "maxRetryCount": 3, "timeout": 10}}
    assert features.handle(command(feature, "update", update)) == p.Outcome.done()
    policy = manager.views[cid].config.restart_policy
    assert (policy.type, policy.max_retry_count, policy.retry_timeout) == (
        RestartPolicyType.ON_FAILURE,
        3,
        10,
    )
    assert features.handle(command(feature, "remove", None)) == p.Outcome.done()
    assert manager.calls[-1] == ("remove", cid, False)
    assert cid not in manager.views


def test_manager_refusals_are_500_with_kantos_text(features: Features) -> None:
    cid = created(features, start=True)
    feature = f"Container:{cid}"
    assert error(features.handle(command(feature, "start", {}))) == (
        500,
        "messages:execution.failed",
        f"the container with id = {cid} is already running",
    )
    assert error(features.handle(command(feature, "remove", False))) == (
        500,
        "messages:execution.failed",
        f"container with id = {cid} is not stopped - must set the force flag to true to remove it",
    )
    assert error(features.handle(command(feature, "resume", None, False)))[2] == (
        f"container id = {cid} is not paused - cannot unpause it "
    )


def test_unknown_container_is_a_404_rejection(features: Features) -> None:
    result = features.handle(command("Container:nope", "start", {}))
    assert isinstance(result, p.Rejection)
    assert result.error == p.DittoError(
        404, "things:feature.notfound", "feature [Container:nope] not found "
    )


@pytest.mark.parametrize("feature", ["Metrics", "SoftwareUpdatable", "Foo", "Container:"])
def test_unknown_features(features: Features, feature: str) -> None:
    result = features.handle(command(feature, "request", {}))
    assert isinstance(result, p.Rejection)
    assert result.error.status == 404


def test_unpause_is_not_an_operation(features: Features) -> None:
    cid = created(features, start=True)
    assert error(features.handle(command(f"Container:{cid}", "unpause", None, False))) == (
        404,
        "messages:subject.notfound",
        "unsupported operation unpause",
    )


def test_unexpected_exceptions_are_500(features: Features, manager: FakeManager) -> None:
    cid = created(features)

    def explode(*args: object) -> None:
        raise KeyError("surprise")

    manager.pause = explode  # type: ignore[method-assign]
    status, code, _ = error(features.handle(command(f"Container:{cid}", "pause", None, False)))
    assert (status, code) == (500, "messages:execution.failed")


def test_disabled_factory_knows_no_features(manager: FakeManager) -> None:
    features = Features(manager, FeatureSettings(factory_enabled=False))
    result = features.handle(command("ContainerFactory", "create", {"imageRef": "i"}))
    assert isinstance(result, p.Rejection)
