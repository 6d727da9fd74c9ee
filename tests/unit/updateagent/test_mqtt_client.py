"""The agent's MQTT client keeps what is published before a connection in order."""

from __future__ import annotations

from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from ocirt.things.mqtt import MqttSettings
from ocirt.updateagent import mqtt as agent_mqtt


class FakePaho:
    """Records what reaches paho, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> Any:
        self.sent.append((topic, payload))

        class Info:
            rc = 0

        return Info()

    def subscribe(self, topics: Any) -> None:
        self.sent.append(("<subscribe>", b""))


class FakeAgent:
    class topics:
        inbound = ("in/a", "in/b")

    def __init__(self, client: agent_mqtt.AgentClient) -> None:
        self.client = client
        self.connects = 0

    def on_connected(self) -> None:
        self.connects += 1
        self.client.publish("current", b"state", True)


@pytest.fixture
def client() -> tuple[agent_mqtt.AgentClient, FakePaho]:
    the_client = agent_mqtt.AgentClient(MqttSettings(broker_url="tcp://127.0.0.1:1"))
    fake = FakePaho()
    the_client._client = fake  # type: ignore[assignment]
    the_client._agent = FakeAgent(the_client)  # type: ignore[assignment]
    return the_client, fake


def connected(the_client: agent_mqtt.AgentClient) -> None:
    success = ReasonCode(PacketTypes.CONNACK, "Success")
    the_client._on_connect(the_client._client, None, None, success)


def test_what_is_published_before_the_connection_goes_first_and_in_order(
    client: tuple[agent_mqtt.AgentClient, FakePaho],
) -> None:
    the_client, fake = client
    the_client.publish("feedback", b"1 ROLLBACK with its reason", False)
    the_client.publish("feedback", b"2 ROLLBACK_SUCCESS", False)
    assert fake.sent == []  # held, not left to paho's own queue
    connected(the_client)
    assert fake.sent == [
        ("feedback", b"1 ROLLBACK with its reason"),
        ("feedback", b"2 ROLLBACK_SUCCESS"),
        ("<subscribe>", b""),
        ("current", b"state"),
    ]
    the_client.publish("feedback", b"3 now", False)
    assert fake.sent[-1] == ("feedback", b"3 now")


def test_after_a_disconnect_messages_wait_again(
    client: tuple[agent_mqtt.AgentClient, FakePaho],
) -> None:
    the_client, fake = client
    connected(the_client)
    the_client._on_disconnect(the_client._client, None, None, None, None)
    the_client.publish("feedback", b"offline", False)
    assert ("feedback", b"offline") not in fake.sent
    connected(the_client)
    assert fake.sent.index(("feedback", b"offline")) < len(fake.sent) - 2


def test_the_backlog_keeps_the_newest(client: tuple[agent_mqtt.AgentClient, FakePaho]) -> None:
    the_client, fake = client
    for n in range(agent_mqtt.BACKLOG_MAX + 5):
        the_client.publish("feedback", str(n).encode(), False)
    connected(the_client)
    held = [payload for topic, payload in fake.sent if topic == "feedback"]
    assert len(held) == agent_mqtt.BACKLOG_MAX
    assert held[0] == b"5" and held[-1] == str(agent_mqtt.BACKLOG_MAX + 4).encode()
