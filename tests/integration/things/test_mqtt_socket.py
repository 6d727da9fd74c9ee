"""The MQTT client's socket against a real mosquitto: TCP_NODELAY on the connection, and
an immediate ACK after each PUBACK (see "Latency" in ocirt.things.mqtt)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from service_harness import WAIT, Broker, Cloud

from ocirt.things import mqtt
from ocirt.things.features import Features
from ocirt.things.mqtt import MqttSettings, ThingsClient
from tests.support.fake_manager import FakeManager

pytestmark = pytest.mark.integration


def test_the_connection_has_nodelay_and_pubacks_are_acked_at_once(
    tmp_path: Path, broker: Broker, cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[int] = []
    real = mqtt._set_tcp_option

    def recording(client: object, option: int) -> None:
        applied.append(option)
        real(client, option)  # type: ignore[arg-type]

    monkeypatch.setattr(mqtt, "_set_tcp_option", recording)
    manager = FakeManager()
    settings = MqttSettings(broker_url=f"tcp://127.0.0.1:{broker.port}")
    client = ThingsClient(settings, manager, Features(manager), tmp_path / "things")
    client.start()
    try:
        # The bootstrap publishes the ContainerFactory feature with QoS 1: its PUBACK
        # must be acknowledged at once.
        assert client.wait_ready(WAIT)
        deadline = time.monotonic() + WAIT
        while socket.TCP_QUICKACK not in applied and time.monotonic() < deadline:
            time.sleep(0.01)
        assert socket.TCP_QUICKACK in applied
        sock = client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        client.close()
