"""Oversized MQTT input: a message over limits.mqtt_max_message_size is skipped unread,
answered 413 from its topic alone, and the connection goes on."""

from __future__ import annotations

import pytest
from service_harness import IMAGE, Cloud, Service

pytestmark = pytest.mark.integration


def test_an_oversized_command_is_answered_413_and_the_daemon_goes_on(
    service: Service, cloud: Cloud
) -> None:
    service.extra_config = {"limits": {"mqtt_max_message_size": 64 * 1024}}
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)

    big = b'{"topic": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    answer = cloud.response(cloud.send("create", "ContainerFactory", raw=big, req_id="big"))
    assert answer.topic == f"command//{cloud.thing}/res/big/413"
    assert answer.body["topic"] == "unknown/unknown/things/twin/errors"
    assert answer.body["status"] == 413
    assert answer.body["value"]["error"] == "messages:payload.toolarge"
    assert answer.body["value"]["message"] == (
        f"message of {len(big)} bytes exceeds the limit of {64 * 1024} bytes"
    )

    # The same connection carries the next command (the skipped bytes were all read),
    # and the broker does not send the big one again (it was acknowledged).
    got = cloud.call("create", "ContainerFactory", {"imageRef": IMAGE})
    assert got.body["status"] == 200
    assert service.proc is not None and service.proc.poll() is None
    assert [m.topic for m in cloud.messages if "/res/big/" in m.topic] == [answer.topic]
