"""The MQTT adapter against a recording fake of the paho surface it uses: bootstrap,
republish, feature deletion from the known-features file, reconnect, commands on the
worker pool, publishing failures. No broker: the test plays the network thread by
calling the callbacks the adapter installed, as paho would."""

from __future__ import annotations

import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.errors import InvalidArgument, Unavailable
from ocirt.things import known, mqtt
from ocirt.things import protocol as p
from ocirt.things.features import Features, FeatureSettings
from tests.support.fake_manager import FakeManager

DEVICE = "ns:gw"
THING = p.ThingId.for_device(DEVICE)
TID = str(THING)
IDENTITY = json.dumps({"deviceId": DEVICE, "tenantId": "t"}).encode()
TWIN_TOPIC = f"e/t/{TID}"
WAIT = 10.0


@dataclass
class Published:
    topic: str
    payload: bytes
    qos: int

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass
class _Info:
    rc: int
    mid: int = 0

    def is_published(self) -> bool:
        return True

    def wait_for_publish(self, timeout: float | None = None) -> None:
        pass


@dataclass
class _Message:
    topic: str
    payload: bytes


@dataclass
class _Reason:
    is_failure: bool = False

    def __str__(self) -> str:
        return "Not authorized" if self.is_failure else "Success"


@dataclass
class FakePaho:
    """Records what the adapter asks of paho.Client; the test fires the callbacks."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    published: list[Published] = field(default_factory=list)
    subscribed: list[str] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    tls_context: ssl.SSLContext | None = None
    credentials: tuple[str, str | None] | None = None
    publish_rc: int = paho.MQTT_ERR_SUCCESS
    connect_error: Exception | None = None
    sock: socket.socket | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)
    on_connect: Callable[..., None] | None = None
    on_publish: Callable[..., None] | None = None
    on_disconnect: Callable[..., None] | None = None
    on_connect_fail: Callable[..., None] | None = None
    on_message: Callable[..., None] | None = None
    on_oversized: Callable[[str, int], None] | None = None
    connect_timeout: float = 0.0
    mids: list[int] = field(default_factory=list)

    def username_pw_set(self, username: str, password: str | None) -> None:
        self.credentials = (username, password)

    def tls_set_context(self, context: ssl.SSLContext) -> None:
        self.tls_context = context

    def enable_logger(self, logger: logging.Logger) -> None:
        self.calls.append("enable_logger")

    def reconnect_delay_set(self, min_delay: int, max_delay: int) -> None:
        self.calls.append(f"reconnect_delay {min_delay}..{max_delay}")

    def connect_async(self, host: str, port: int, keepalive: int) -> None:
        if self.connect_error is not None:
            raise self.connect_error
        self.calls.append(f"connect {host}:{port} keepalive {keepalive}")

    def loop_start(self) -> None:
        self.calls.append("loop_start")

    def loop_stop(self) -> None:
        self.calls.append("loop_stop")

    def disconnect(self) -> None:
        self.calls.append("disconnect")

    def socket(self) -> socket.socket | None:
        return self.sock

    def subscribe(self, topic: str, qos: int = 0) -> None:
        assert qos == mqtt.QOS
        with self.changed:
            self.subscribed.append(topic)
            self.changed.notify_all()

    def unsubscribe(self, topic: str) -> None:
        self.unsubscribed.append(topic)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> _Info:
        with self.changed:
            self.published.append(Published(topic, bytes(payload), qos))
            self.mids.append(len(self.published))
            self.changed.notify_all()
        return _Info(self.publish_rc, len(self.published))

    def acked(self, *mids: int) -> None:
        """The broker's PUBACK of the messages with these mids."""
        assert self.on_publish is not None
        for mid in mids:
            self.on_publish(self, None, mid, None, None)

    # ---- what the test does as paho's network thread ----------------------------------

    def connected(self, reason: _Reason | None = None) -> None:
        assert self.on_connect is not None
        self.on_connect(self, None, {}, reason or _Reason())

    def disconnected(self) -> None:
        assert self.on_disconnect is not None
        self.on_disconnect(self, None, {}, "connection lost")

    def deliver(self, topic: str, payload: bytes) -> None:
        assert self.on_message is not None
        self.on_message(self, None, _Message(topic, payload))

    def wait_for(self, predicate: Callable[[list[Published]], bool], what: str) -> list[Published]:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.published), WAIT):
                raise AssertionError(f"never published {what}: {self.published}")
            return list(self.published)


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> list[FakePaho]:
    made: list[FakePaho] = []

    def make(*args: Any, **kwargs: Any) -> FakePaho:
        made.append(FakePaho(args, kwargs))
        return made[-1]

    monkeypatch.setattr(mqtt, "_BoundedClient", make)
    return made


@dataclass
class Rig:
    client: mqtt.ThingsClient
    paho: FakePaho
    manager: FakeManager
    home: Path
    ready: list[p.Identity]

    def bootstrap(self) -> None:
        """Connect and answer the identity request, as the cloud connector does."""
        count = len(self.ready)
        self.paho.connected()
        self.paho.wait_for(lambda m: _bootstrap_requests(m) > 0, "the identity request")
        self.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, IDENTITY)
        assert self.client.wait_ready(WAIT)
        with self.paho.changed:
            assert self.paho.changed.wait_for(lambda: len(self.ready) > count, WAIT)

    def command(self, op: str, feature: str, value: object = ..., req: str = "r1") -> None:
        headers: dict[str, object] = {"response-required": True, "correlation-id": req}
        envelope: dict[str, object] = {
            "topic": f"ns/gw:edge:containers/things/live/messages/{op}",
            "headers": headers,
            "path": f"/features/{feature}/inbox/messages/{op}",
        }
        if value is not ...:
            envelope["value"] = value
            headers["content-type"] = "application/json"
        self.paho.deliver(f"command//{TID}/req/{req}/{op}", json.dumps(envelope).encode())

    def response(self, req: str) -> Published:
        def answered(messages: list[Published]) -> bool:
            return any(m.topic.startswith(f"command//{TID}/res/{req}/") for m in messages)

        messages = self.paho.wait_for(answered, f"a response to {req}")
        return next(m for m in messages if m.topic.startswith(f"command//{TID}/res/{req}/"))


def _bootstrap_requests(messages: list[Published]) -> int:
    return sum(m.topic == p.BOOTSTRAP_REQUEST_TOPIC for m in messages)


def _twin(messages: list[Published]) -> list[tuple[str, str]]:
    """(action, path) of each twin command, in order."""
    return [
        (m.json()["topic"].rsplit("/", 1)[1], m.json()["path"])
        for m in messages
        if m.topic == TWIN_TOPIC
    ]


def _make(
    fakes: list[FakePaho],
    home: Path,
    manager: FakeManager | None = None,
    *,
    settings: mqtt.MqttSettings | None = None,
    factory: bool = True,
) -> Rig:
    manager = manager or FakeManager()
    features = Features(manager, FeatureSettings(factory_enabled=factory))
    client = mqtt.ThingsClient(
        settings or mqtt.MqttSettings(broker_url="tcp://broker.test:1884"),
        manager,
        features,
        home,
        factory_enabled=factory,
    )
    ready: list[p.Identity] = []
    fake = fakes[-1]

    def on_ready(identity: p.Identity) -> None:
        with fake.changed:
            ready.append(identity)
            fake.changed.notify_all()

    client.on_ready = on_ready
    return Rig(client, fake, manager, home, ready)


@pytest.fixture
def rig(fakes: list[FakePaho], tmp_path: Path) -> Iterator[Rig]:
    made = _make(fakes, tmp_path / "things")
    made.client.start()
    try:
        yield made
    finally:
        made.client.close()


def _create(manager: FakeManager, name: str) -> ContainerId:
    return manager.create("img", ContainerConfig(), name).id


# ---- set-up and start ------------------------------------------------------------------


def test_client_is_configured_as_kanto_connects(fakes: list[FakePaho], tmp_path: Path) -> None:
    settings = mqtt.MqttSettings(
        broker_url="mqtt://broker.test", keep_alive=7, username="u", password="pw"
    )
    made = _make(fakes, tmp_path, settings=settings)
    fake = made.paho
    # A persistent session under a client id kept in the home dir (Kanto: clean, random).
    assert fake.kwargs["clean_session"] is False
    assert fake.kwargs["protocol"] == paho.MQTTv311
    assert fake.kwargs["client_id"].startswith("ocirt-")
    assert fake.kwargs["max_packet"] == 1024 * 1024
    again = _make(fakes, tmp_path, settings=settings)
    assert again.paho.kwargs["client_id"] == fake.kwargs["client_id"]
    other = _make(fakes, tmp_path / "other", settings=settings)
    assert other.paho.kwargs["client_id"] != fake.kwargs["client_id"]
    assert fake.credentials == ("u", "pw")
    assert fake.tls_context is None
    made.client.start()
    try:
        assert fake.calls[-2:] == ["connect broker.test:1883 keepalive 7", "loop_start"]
    finally:
        made.client.close()
    assert fake.calls[-2:] == ["disconnect", "loop_stop"]


def test_an_empty_password_is_sent_as_none(fakes: list[FakePaho], tmp_path: Path) -> None:
    made = _make(fakes, tmp_path, settings=mqtt.MqttSettings(username="u"))
    assert made.paho.credentials == ("u", None)


def test_tls_url_gets_a_verifying_context(fakes: list[FakePaho], tmp_path: Path) -> None:
    made = _make(fakes, tmp_path, settings=mqtt.MqttSettings(broker_url="ssl://broker.test"))
    context = made.paho.tls_context
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2


def test_unreachable_broker_at_start_is_unavailable(fakes: list[FakePaho], tmp_path: Path) -> None:
    made = _make(fakes, tmp_path)
    made.paho.connect_error = OSError(-2, "Name or service not known")
    try:
        with pytest.raises(Unavailable, match="cannot reach the MQTT broker"):
            made.client.start()
    finally:
        made.client.close()


# ---- bootstrap and republish ----------------------------------------------------------


def test_bootstrap_asks_identity_then_subscribes_and_publishes_the_features(
    fakes: list[FakePaho], tmp_path: Path
) -> None:
    manager = FakeManager()
    web = _create(manager, "web")
    made = _make(fakes, tmp_path / "things", manager)
    made.client.start()
    try:
        made.paho.connected()
        assert made.client.identity is None
        messages = made.paho.wait_for(lambda m: _bootstrap_requests(m) == 1, "a request")
        assert messages[0].payload == p.BOOTSTRAP_REQUEST
        assert made.paho.subscribed == [p.BOOTSTRAP_RESPONSE_TOPIC]
        made.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, IDENTITY)
        assert made.client.wait_ready(WAIT)
        assert made.client.identity == p.Identity(DEVICE, "t")
        assert made.paho.subscribed[-1] == f"command//{TID}/req/#"
        messages = made.paho.wait_for(lambda m: len(_twin(m)) >= 2, "the features")
        assert _twin(messages) == [
            ("modify", "/features/ContainerFactory"),
            ("modify", f"/features/Container:{web}"),
        ]
        assert all(m.qos == mqtt.QOS for m in messages)
        assert made.ready == [p.Identity(DEVICE, "t")]
    finally:
        made.client.close()
    assert known.load(tmp_path / "things", THING) == {web}


def test_identity_request_is_repeated_until_answered(
    fakes: list[FakePaho], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mqtt, "BOOTSTRAP_RETRY", 0.01)
    made = _make(fakes, tmp_path)
    made.client.start()
    try:
        made.paho.connected()
        made.paho.wait_for(lambda m: _bootstrap_requests(m) >= 3, "three identity requests")
        made.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, IDENTITY)
        assert made.client.wait_ready(WAIT)
    finally:
        made.client.close()


def test_unusable_identity_is_ignored(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.paho.connected()
    with caplog.at_level(logging.WARNING, logger=mqtt.__name__):
        rig.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, b'{"tenantId": "t"}')
    assert rig.client.identity is None
    assert "ignored a bootstrap response" in caplog.text
    assert rig.paho.subscribed == [p.BOOTSTRAP_RESPONSE_TOPIC]


def test_features_of_containers_gone_while_offline_are_deleted(
    fakes: list[FakePaho], tmp_path: Path
) -> None:
    home = tmp_path / "things"
    manager = FakeManager()
    kept = _create(manager, "kept")
    known.save(home, THING, {kept, "gone1", "gone2"})
    made = _make(fakes, home, manager)
    made.client.start()
    try:
        made.bootstrap()
        messages = made.paho.wait_for(lambda m: len(_twin(m)) >= 4, "the deletes")
        assert _twin(messages) == [
            ("modify", "/features/ContainerFactory"),
            ("modify", f"/features/Container:{kept}"),
            ("delete", "/features/Container:gone1"),
            ("delete", "/features/Container:gone2"),
        ]
        # Forgotten only once the broker has each delete (PUBACK).
        assert known.load(home, THING) == {kept, "gone1", "gone2"}
        gone1 = next(i + 1 for i, m in enumerate(messages) if "gone1" in m.json()["path"])
        made.paho.acked(gone1)
    finally:
        made.client.close()
    assert known.load(home, THING) == {kept, "gone2"}


def test_reconnect_republishes_the_whole_feature_set(rig: Rig) -> None:
    web = _create(rig.manager, "web")
    rig.bootstrap()
    rig.paho.disconnected()
    before = len(rig.paho.published)
    rig.paho.connected()
    assert rig.client.identity is None  # asked afresh on every connect, as Kanto does
    rig.bootstrap()
    after = rig.paho.wait_for(lambda m: len(_twin(m[before:])) >= 2, "a republish")[before:]
    assert _twin(after)[:2] == [
        ("modify", "/features/ContainerFactory"),
        ("modify", f"/features/Container:{web}"),
    ]
    assert len(rig.ready) == 2


def test_a_new_identity_moves_the_command_subscription(rig: Rig) -> None:
    rig.bootstrap()
    other = json.dumps({"deviceId": "ns:other", "tenantId": "t"}).encode()
    rig.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, other)
    assert rig.paho.unsubscribed == [f"command//{TID}/req/#"]
    assert rig.paho.subscribed[-1] == "command//ns:other:edge:containers/req/#"


def test_the_same_identity_twice_republishes_once(rig: Rig) -> None:
    rig.bootstrap()
    rig.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, IDENTITY)
    assert rig.paho.subscribed.count(f"command//{TID}/req/#") == 1


def test_refused_connection_does_not_bootstrap(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=mqtt.__name__):
        rig.paho.connected(_Reason(is_failure=True))
    assert "MQTT connection refused: Not authorized" in caplog.text
    assert rig.paho.subscribed == []
    assert rig.paho.published == []


def test_each_new_connect_failure_is_logged_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    assert rig.paho.on_connect_fail is not None
    with caplog.at_level(logging.DEBUG, logger=mqtt.__name__):
        for error in (ConnectionRefusedError(111, "Connection refused"),) * 2 + (TimeoutError(),):
            try:
                raise error
            except OSError:
                rig.paho.on_connect_fail(rig.paho, None)
    levels = [(r.levelname, r.getMessage().rsplit(": ", 1)[1]) for r in caplog.records]
    assert levels == [
        ("WARNING", "Connection refused; retrying"),
        ("DEBUG", "Connection refused; retrying"),
        ("WARNING", "timed out; retrying"),
    ]


def test_tcp_nodelay_on_connect_and_quickack_after_each_puback(rig: Rig) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        rig.paho.sock = sock
        rig.paho.connected()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert rig.paho.on_publish is not None
        rig.paho.on_publish(rig.paho, None, 1, None, None)  # must not raise


def test_socket_options_on_a_missing_socket_are_skipped(rig: Rig) -> None:
    rig.paho.sock = None
    rig.paho.connected()  # paho may have no socket yet: keep the defaults, go on
    assert rig.paho.subscribed == [p.BOOTSTRAP_RESPONSE_TOPIC]


# ---- the twin after the bootstrap -----------------------------------------------------


def test_manager_events_become_twin_commands_and_update_the_known_file(rig: Rig) -> None:
    rig.bootstrap()
    before = len(rig.paho.published)
    web = _create(rig.manager, "web")
    rig.manager.remove(web)
    messages = rig.paho.wait_for(lambda m: len(_twin(m[before:])) >= 4, "the event flow")
    feature = f"/features/Container:{web}"
    assert _twin(messages[before:]) == [
        ("modify", feature),
        ("modify", f"{feature}/properties/status/state"),
        ("modify", f"{feature}/properties/status/state"),  # DEAD
        ("delete", feature),
    ]
    delete = len(messages)
    assert _twin(messages[delete - 1 :]) == [("delete", feature)]
    rig.paho.acked(delete - 1)  # another message's PUBACK changes nothing
    rig.client.close()  # the publisher has handled every event once it stopped
    # Not acknowledged: kept, so the next bootstrap deletes the feature again.
    assert known.load(rig.home, THING) == {web}


def test_a_removed_container_is_forgotten_once_its_delete_is_acknowledged(rig: Rig) -> None:
    rig.bootstrap()
    before = len(rig.paho.published)
    web = _create(rig.manager, "web")
    rig.manager.remove(web)
    messages = rig.paho.wait_for(lambda m: len(_twin(m[before:])) >= 4, "the event flow")
    rig.paho.acked(len(messages))
    rig.client.close()
    assert known.load(rig.home, THING) == set()


def test_created_container_is_remembered_for_the_next_bootstrap(rig: Rig) -> None:
    rig.bootstrap()
    web = _create(rig.manager, "web")
    rig.client.close()
    assert known.load(rig.home, THING) == {web}


def test_events_before_the_bootstrap_are_not_published(rig: Rig) -> None:
    _create(rig.manager, "early")
    rig.client.close()
    assert _twin(rig.paho.published) == []


def test_without_the_factory_feature_no_container_feature_is_published(
    fakes: list[FakePaho], tmp_path: Path
) -> None:
    home = tmp_path / "things"
    manager = FakeManager()
    _create(manager, "web")
    known.save(home, THING, {"old"})
    made = _make(fakes, home, manager, factory=False)
    made.client.start()
    try:
        made.bootstrap()
        _create(manager, "later")
    finally:
        made.client.close()
    # Features of containers this thing no longer publishes are taken down.
    assert _twin(made.paho.published) == [("delete", "/features/Container:old")]


def test_a_failing_twin_update_is_logged_and_the_publisher_goes_on(
    fakes: list[FakePaho], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenList(FakeManager):
        def __init__(self) -> None:
            super().__init__()
            self.broken = True

        def list(self) -> list[Any]:
            if self.broken:
                self.broken = False
                raise RuntimeError("store gone")
            return list(super().list())

    manager = BrokenList()
    made = _make(fakes, tmp_path, manager)
    made.client.start()
    try:
        with caplog.at_level(logging.ERROR, logger=mqtt.__name__):
            made.paho.connected()
            made.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, IDENTITY)
            made.paho.connected()  # the next bootstrap works again
            made.paho.deliver(p.BOOTSTRAP_RESPONSE_TOPIC, IDENTITY)
            assert made.client.wait_ready(WAIT)
    finally:
        made.client.close()
    assert "twin update failed" in caplog.text


def test_failed_publish_is_logged(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.bootstrap()
    rig.paho.publish_rc = paho.MQTT_ERR_QUEUE_SIZE
    with caplog.at_level(logging.WARNING, logger=mqtt.__name__):
        rig.command("start", "Container:nope")
        rig.response("r1")
        rig.client.close()
    assert f"publish to command//{TID}/res/r1/404 failed" in caplog.text


def test_publish_without_a_connection_is_not_an_error(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.bootstrap()
    rig.paho.publish_rc = paho.MQTT_ERR_NO_CONN  # paho queues it for the reconnect
    with caplog.at_level(logging.WARNING, logger=mqtt.__name__):
        rig.command("start", "Container:nope")
        rig.response("r1")
        rig.client.close()
    assert "failed" not in caplog.text


# ---- commands -------------------------------------------------------------------------


def test_create_command_is_answered_with_the_new_id(rig: Rig) -> None:
    rig.bootstrap()
    rig.command("create", "ContainerFactory", {"imageRef": "img"})
    answer = rig.response("r1")
    assert answer.topic == f"command//{TID}/res/r1/200"
    body = answer.json()
    assert body["value"] == rig.manager.list()[0].id
    assert body["headers"]["correlation-id"] == "r1"
    assert body["path"] == "/features/ContainerFactory/outbox/messages/create"


def test_operation_on_a_missing_container_is_404(rig: Rig) -> None:
    rig.bootstrap()
    rig.command("start", "Container:nope")
    body = rig.response("r1").json()
    assert (body["status"], body["value"]["error"]) == (404, "things:feature.notfound")


def test_unknown_feature_is_rejected(rig: Rig) -> None:
    rig.bootstrap()
    rig.command("start", "Nothing")
    body = rig.response("r1").json()
    assert body["value"]["message"] == "feature [Nothing] not found "


def test_malformed_command_is_rejected_on_the_errors_topic(rig: Rig) -> None:
    rig.bootstrap()
    rig.paho.deliver(f"command//{TID}/req/bad/start", b"{not json")
    body = rig.response("bad").json()
    assert (body["topic"], body["status"]) == (p.ERRORS_TOPIC, 400)


def test_commands_for_other_things_are_ignored(rig: Rig) -> None:
    rig.bootstrap()
    before = len(rig.paho.published)
    rig.paho.deliver("command//ns:other:edge:containers/req/x/start", b"{}")
    rig.command("start", "Container:nope", req="after")
    messages = rig.paho.wait_for(lambda m: len(m) > before, "the later answer")
    assert [m.topic for m in messages[before:]] == [f"command//{TID}/res/after/404"]


def test_command_before_the_bootstrap_runs_after_it(rig: Rig) -> None:
    # The persistent session delivers queued commands right after the connect.
    rig.paho.connected()
    rig.command("start", "Container:c1")
    assert not any("/res/" in m.topic for m in rig.paho.published)
    rig.bootstrap()
    assert rig.response("r1").json()["status"] == 404


def test_a_long_command_does_not_hold_up_another(rig: Rig) -> None:
    rig.bootstrap()
    slow = _create(rig.manager, "slow")
    fast = _create(rig.manager, "fast")
    rig.manager.start(fast)
    rig.manager.block = threading.Event()
    rig.command("start", f"Container:{slow}", req="slow")
    rig.command("stop", f"Container:{fast}", req="fast")
    assert rig.response("fast").json()["status"] == 204
    assert not any("/res/slow/" in m.topic for m in rig.paho.published)
    rig.manager.block.set()
    assert rig.response("slow").json()["status"] == 204


def test_messages_after_close_are_answered_503(rig: Rig) -> None:
    rig.bootstrap()
    rig.client.close()
    rig.command("start", "Container:nope")
    answer = rig.response("r1")
    assert answer.topic == f"command//{TID}/res/r1/503"
    assert answer.json()["value"]["error"] == "messages:service.unavailable"


def test_commands_queued_at_close_are_answered_503(fakes: list[FakePaho], tmp_path: Path) -> None:
    manager = FakeManager()
    cid = _create(manager, "slow")
    made = _make(fakes, tmp_path, manager)
    made.client.start()
    made.bootstrap()
    manager.block = threading.Event()
    made.command("start", f"Container:{cid}", req="running")
    made.command("stop", f"Container:{cid}", req="queued")  # behind it: same container
    closing = threading.Thread(target=made.client.close)
    closing.start()
    try:
        assert made.response("queued").json()["status"] == 503
    finally:
        manager.block.set()
        closing.join(WAIT)
    assert made.response("running").json()["status"] == 204


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.01)


def test_a_full_queue_is_answered_503_at_once(fakes: list[FakePaho], tmp_path: Path) -> None:
    from ocirt.lanes import Lanes

    manager = FakeManager()
    cid = _create(manager, "c")
    lanes = Lanes(1, 1, 1)
    features = Features(manager, FeatureSettings())
    client = mqtt.ThingsClient(mqtt.MqttSettings(), manager, features, tmp_path, lanes=lanes)
    made = Rig(client, fakes[-1], manager, tmp_path, [])
    client.on_ready = lambda identity: made.ready.append(identity)
    client.start()
    manager.block = threading.Event()
    try:
        made.bootstrap()
        made.command("start", f"Container:{cid}", req="runs")
        _until(lambda: ("start", cid) in manager.calls)  # running, so out of the queue
        made.command("stop", f"Container:{cid}", req="waits")
        made.command("pause", f"Container:{cid}", req="refused")
        body = made.response("refused").json()
        assert body["status"] == 503
        assert "too many requests are waiting" in body["value"]["message"]
    finally:
        manager.block.set()
        lanes.close(WAIT)
        client.close()


def test_a_message_that_cannot_be_handled_is_logged(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    assert rig.paho.on_message is not None
    with caplog.at_level(logging.ERROR, logger=mqtt.__name__):
        rig.paho.on_message(rig.paho, None, _Message(f"command//{TID}/req/x/y", None))  # type: ignore[arg-type]
    assert "dropped an MQTT message" in caplog.text


def test_close_is_idempotent(rig: Rig) -> None:
    rig.client.close()
    rig.client.close()
    assert rig.paho.calls.count("disconnect") == 1


# ---- pure helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("tcp://localhost:1883", ("localhost", 1883, False)),
        ("mqtt://h", ("h", 1883, False)),
        ("ssl://h", ("h", 8883, True)),
        ("TLS://h:9000", ("h", 9000, True)),
        ("mqtts://h", ("h", 8883, True)),
        ("mqtt+ssl://h", ("h", 8883, True)),
        ("tcps://h", ("h", 8883, True)),
    ],
)
def test_broker_address(url: str, address: tuple[str, int, bool]) -> None:
    assert mqtt.broker_address(url) == address


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ws://h:80", "unsupported broker URL scheme"),
        ("tcp://h:port", "invalid port"),
        ("tcp://:1883", "no host"),
    ],
)
def test_bad_broker_urls(url: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        mqtt.broker_address(url)


def test_tls_files_that_cannot_be_read_stop_the_start(tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.pem")
    with pytest.raises(InvalidArgument, match="cannot load the CA certificates"):
        mqtt.tls_context(mqtt.MqttSettings(root_ca=missing))
    with pytest.raises(InvalidArgument, match="client_key needs client_cert"):
        mqtt.tls_context(mqtt.MqttSettings(client_key=missing))
    with pytest.raises(InvalidArgument, match="cannot load the client certificate"):
        mqtt.tls_context(mqtt.MqttSettings(client_cert=missing))


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (None, "no reason given"),
        (TimeoutError(), "timed out"),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
        (ssl.SSLError(1, "[SSL] wrong version number"), "TLS handshake failed"),
    ],
)
def test_connect_errors_in_words(error: BaseException | None, words: str) -> None:
    assert words in mqtt.describe_connect_error(error)


def test_untrusted_broker_certificate_in_words() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    words = mqtt.describe_connect_error(error)
    assert words.startswith("TLS: the broker's certificate is not trusted (self-signed")
    assert "connection.transport.root_ca" in words


def test_paho_retry_noise_is_filtered() -> None:
    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("paho", logging.ERROR, __file__, 1, msg, None, None)

    assert not mqtt._paho_log.filter(record("Client is not connected"))
    assert mqtt._paho_log.filter(record("failed to receive on socket"))


# ---- oversized messages: paho's read path, over a socket pair -------------------------


def _publish_packet(topic: str, payload: bytes, qos: int, mid: int = 0) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic.encode()
    if qos:
        body += mid.to_bytes(2, "big")
    body += payload
    length, remaining = b"", len(body)
    while True:
        byte, remaining = remaining % 128, remaining // 128
        length += bytes([byte | (128 if remaining else 0)])
        if not remaining:
            break
    return bytes([0x30 | (qos << 1)]) + length + body


def test_an_oversized_publish_is_skipped_unread_and_acknowledged() -> None:
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt._BoundedClient(
        CallbackAPIVersion.VERSION2, client_id="t", protocol=paho.MQTTv311, max_packet=4096
    )
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    oversized: list[tuple[str, int]] = []
    delivered: list[tuple[str, bytes]] = []
    client.on_oversized = lambda topic, size: oversized.append((topic, size))
    client.on_message = lambda c, u, m: delivered.append((m.topic, bytes(m.payload)))
    big = os.urandom(300_000)
    stream = _publish_packet("command//a/req/r1/x", big, 1, 7)
    stream += _publish_packet("small/t", b"hi", 0)
    sender = threading.Thread(target=broker.sendall, args=(stream,))
    sender.start()
    try:
        deadline = time.monotonic() + WAIT
        while not delivered:
            assert time.monotonic() < deadline
            rc = client._packet_read()
            assert rc in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_AGAIN)
            # Never more than the topic, the packet id and one chunk held.
            assert len(client._in_packet["packet"]) == 0
            assert len(client._skip_head) <= 2 + 65535 + 2
        client.loop_write()
        broker.settimeout(WAIT)
        assert broker.recv(4) == bytes([0x40, 2, 0, 7])  # PUBACK of mid 7
    finally:
        sender.join(WAIT)
        ours.close()
        broker.close()
    assert oversized == [("command//a/req/r1/x", len(big))]
    assert delivered == [("small/t", b"hi")]


def test_twin_events_of_a_command_leave_after_its_answer(rig: Rig) -> None:
    rig.bootstrap()
    rig.manager.block = threading.Event()  # the start of create+start waits
    before = len(rig.paho.published)
    rig.command("create", "ContainerFactory", {"imageRef": "img", "start": True})
    # The create's events are out of the manager; the answer is not: they wait for it.
    for _ in range(1000):
        if rig.manager.list():
            break
        time.sleep(0.01)
    assert rig.manager.list()
    time.sleep(0.2)  # well below ANSWER_FIRST: what the publisher would have sent by now
    assert not any(m.topic == TWIN_TOPIC for m in rig.paho.published[before:])
    rig.manager.block.set()
    rig.response("r1")
    messages = rig.paho.wait_for(
        lambda m: any(x.topic == TWIN_TOPIC for x in m[before:]), "the twin events"
    )
    topics = [m.topic for m in messages[before:]]
    answer = next(i for i, t in enumerate(topics) if t.startswith(f"command//{TID}/res/r1/"))
    assert answer < topics.index(TWIN_TOPIC)


def test_a_command_that_takes_long_holds_events_back_only_so_long(rig: Rig) -> None:
    rig.bootstrap()
    rig.manager.block = threading.Event()
    before = len(rig.paho.published)
    rig.command("create", "ContainerFactory", {"imageRef": "img", "start": True})
    # Still unanswered, but the twin gets the create after at most ANSWER_FIRST.
    rig.paho.wait_for(lambda m: any(x.topic == TWIN_TOPIC for x in m[before:]), "the twin")
    assert not any("/res/r1/" in m.topic for m in rig.paho.published)
    rig.manager.block.set()
    assert rig.response("r1").json()["status"] == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_connecting_resolves_an_ascii_host_without_the_idna_codec(host: str) -> None:
    # In a fresh interpreter: whether the codec was imported is the point.
    code = f"""
import socket, sys
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from ocirt.things import mqtt

listener = socket.create_server(("127.0.0.1", 0))
client = mqtt._BoundedClient(
    CallbackAPIVersion.VERSION2, client_id="t", protocol=paho.MQTTv311, max_packet=4096
)
client.connect({host!r}, listener.getsockname()[1])
peer, _ = listener.accept()
assert peer.recv(2)[:1] == bytes([paho.CONNECT]), "no CONNECT reached the listener"
print("encodings.idna" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
