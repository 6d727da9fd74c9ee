"""The Metrics feature through the things front end: answers, data messages, the
reporting thread and the persisted request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocirt.manager.types import ContainerView
from ocirt.metrics.collector import Collector
from ocirt.metrics.feature import METRICS_DEFINITION, REQUEST_FILE, MetricsFeature, data_message
from ocirt.things import protocol as p
from ocirt.things.features import Features
from ocirt.things.twin import Twin
from tests.unit.metrics.fakes import FakeSource, view


class NoManager:
    """The container features are not under test here."""

    def get(self, cid: str) -> Any:
        raise AssertionError("not used")


TWIN = Twin(p.ThingId("ns", "gw:edge:containers"), "tenant")


@pytest.fixture
def views() -> list[ContainerView]:
    return [view("a", pid=100)]


@pytest.fixture
def metrics(tmp_path: Path, views: list[ContainerView]) -> Iterator[MetricsFeature]:
    source = FakeSource(cpu={100: 0}, step={100: 100_000_000})
    feature = MetricsFeature(Collector(source, lambda: views), tmp_path, clock=lambda: 1700.9)
    yield feature
    feature.close()


def handle(metrics: MetricsFeature, operation: str, value: Any) -> p.Outcome:
    features = Features(NoManager(), extra={"Metrics": metrics.handle})  # type: ignore[arg-type]
    outcome = features.handle(p.Command("Metrics", operation, value, True, None))
    assert isinstance(outcome, p.Outcome)
    return outcome


def test_request_answers_204_and_is_kept(metrics: MetricsFeature, tmp_path: Path) -> None:
    value = {"frequency": "2s", "filter": [{"id": ["cpu"], "originator": "Container:a"}]}
    assert handle(metrics, "request", value) == p.Outcome.done()
    assert metrics.request.period == 2.0
    stored = json.loads((tmp_path / REQUEST_FILE).read_text())
    assert stored == {"frequency": 2.0, "filter": [{"id": ["cpu"], "originator": "Container:a"}]}
    # A stop forgets it.
    assert handle(metrics, "request", {"frequency": 0}) == p.Outcome.done()
    assert not (tmp_path / REQUEST_FILE).exists()


def test_errors(metrics: MetricsFeature, tmp_path: Path) -> None:
    bad = handle(metrics, "request", {"frequency": "invalid frequency"})
    assert (bad.status, bad.value) == (
        400,
        {
            "error": "messages:parameter.invalid",
            "status": 400,
            "message": 'time: invalid duration "invalid frequency"',
        },
    )
    other = handle(metrics, "invalidRequest", {})
    assert (other.status, other.value) == (
        404,
        {
            "error": "messages:subject.notfound",
            "status": 404,
            "message": "unsupported operation invalidRequest",
        },
    )
    assert not (tmp_path / REQUEST_FILE).exists()


def test_request_is_restored(tmp_path: Path, views: list[ContainerView]) -> None:
    (tmp_path / REQUEST_FILE).write_text('{"frequency": 5, "filter": [{"id": ["pids"]}]}')
    restored = MetricsFeature(Collector(FakeSource(), lambda: views), tmp_path)
    assert restored.request.period == 5.0
    assert restored.request.selected("a") == {"pids"}


@pytest.mark.parametrize("content", ["not json", '{"frequency": "soon"}', "[]"])
def test_unreadable_request_is_ignored(
    tmp_path: Path, views: list[ContainerView], content: str
) -> None:
    (tmp_path / REQUEST_FILE).write_text(content)
    restored = MetricsFeature(Collector(FakeSource(), lambda: views), tmp_path)
    assert restored.request.period is None


def test_bootstrap_publishes_the_feature_and_ticks_send_data(metrics: MetricsFeature) -> None:
    sent: list[p.Outbound] = []
    arrived = threading.Event()

    def send(message: p.Outbound) -> None:
        sent.append(message)
        if len(sent) >= 2:
            arrived.set()

    metrics.start()
    handle(metrics, "request", {"frequency": 1, "filter": [{"id": ["pids"]}]})
    metrics.on_bootstrap(TWIN, send)
    assert arrived.wait(30)
    feature, data = sent[0], sent[1]
    assert (feature.topic, feature.json()) == (
        "e/tenant/ns:gw:edge:containers",
        {
            "topic": "ns/gw:edge:containers/things/twin/commands/modify",
            "headers": {"response-required": False},
            "path": "/features/Metrics",
            "value": {"definition": [METRICS_DEFINITION]},
        },
    )
    assert data.topic == "e/tenant/ns:gw:edge:containers"
    assert data.json()["value"] == {
        "snapshot": [{"originator": "Container:a", "measurements": [{"id": "pids", "value": 2.0}]}],
        "timestamp": 1700,
    }


def test_nothing_is_sent_for_an_empty_snapshot(
    metrics: MetricsFeature, views: list[ContainerView]
) -> None:
    views.clear()
    sent: list[p.Outbound] = []
    metrics._tick(metrics.request, TWIN, sent.append)
    assert sent == []


def test_data_message_shape() -> None:
    snapshot: list[dict[str, object]] = [{"originator": "Container:x", "measurements": []}]
    message = data_message(TWIN, snapshot, 17)
    assert message.json() == {
        "topic": "ns/gw:edge:containers/things/live/messages/data",
        "headers": {"response-required": False, "content-type": "application/json"},
        "path": "/features/Metrics/outbox/messages/data",
        "value": {"snapshot": snapshot, "timestamp": 17},
    }
