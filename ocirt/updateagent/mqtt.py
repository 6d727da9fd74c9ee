"""The update agent's own MQTT client on the `connection` broker. Does I/O.

As Kanto's (update-manager `mqtt/update_agent_client.go`): its own connection with a
UUID client id, clean session, QoS 1; subscribes to the three inbound topics at every
connect and then publishes the current state. Unlike Kanto's, it speaks TLS, with the
same `connection.transport` settings as the things client (`ocirt.things.mqtt`).

What the agent publishes while the client is not connected (an activity rolled back at
start, before the first connect) is held here, in order, and sent from the connect
callback before anything newer. Left to paho, such messages wait in its own queue, which
it sends only after the connect callback has run; a message another thread publishes
in between goes out first, and the Update Manager would see an activity's feedback out
of order. (What paho takes in the moment a connection drops, before the disconnect
callback, still waits in paho's queue; that window is all that is left.)
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ocirt.errors import Unavailable
from ocirt.things.mqtt import MqttSettings, broker_address, describe_connect_error, tls_context
from ocirt.updateagent.agent import UpdateAgent

_log = logging.getLogger(__name__)
QOS = 1
# Messages held while not connected; the oldest are dropped beyond this (a device long
# offline keeps the newest feedback and current state).
BACKLOG_MAX = 1000


class AgentClient:
    """Connects an UpdateAgent to the broker: `start()`, then `close()`."""

    def __init__(self, settings: MqttSettings) -> None:
        self._settings = settings
        self._host, self._port, tls = broker_address(settings.broker_url)
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"ocirt-ua-{uuid.uuid4()}",
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password or None)
        if tls:
            self._client.tls_set_context(tls_context(settings))
        self._client.connect_timeout = settings.connect_timeout
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._agent: UpdateAgent | None = None
        self._last_failure = ""
        self._lock = threading.Lock()
        # Guarded by _lock: whether publishing goes straight to paho, and what waits.
        self._connected = False
        self._backlog: collections.deque[tuple[str, bytes, bool]] = collections.deque(
            maxlen=BACKLOG_MAX
        )

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        with self._lock:
            if not self._connected:
                self._backlog.append((topic, payload, retain))
                return
            self._send(topic, payload, retain)

    def _send(self, topic: str, payload: bytes, retain: bool) -> None:
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            _log.warning("publish to %s failed: %s", topic, paho.error_string(info.rc))

    def start(self, agent: UpdateAgent) -> None:
        self._agent = agent
        try:
            self._client.connect_async(self._host, self._port, int(self._settings.keep_alive))
        except (OSError, ValueError) as exc:
            raise Unavailable(f"cannot reach the MQTT broker {self._settings.broker_url}") from exc
        self._client.loop_start()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any = None,
    ) -> None:
        if getattr(reason_code, "is_failure", False):
            _log.warning("update agent: MQTT connection refused: %s", reason_code)
            return
        with self._lock:
            self._last_failure = ""
            # First what waited, in order; publishers wait on the lock meanwhile.
            while self._backlog:
                self._send(*self._backlog.popleft())
            self._connected = True
        assert self._agent is not None
        client.subscribe([(topic, QOS) for topic in self._agent.topics.inbound])
        self._agent.on_connected()

    def _on_disconnect(self, client: paho.Client, *args: Any) -> None:
        with self._lock:
            self._connected = False

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        reason = describe_connect_error(sys.exc_info()[1])
        with self._lock:
            repeated = reason == self._last_failure
            self._last_failure = reason
        _log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "update agent cannot connect to the MQTT broker %s: %s; retrying",
            self._settings.broker_url,
            reason,
        )

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._agent is not None:
            self._agent.on_message(message.topic, bytes(message.payload))
