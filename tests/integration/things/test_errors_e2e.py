"""Every refusal of docs/kanto-compatibility.md §1 (and docs/kanto-compatibility.md decisions 1-3)
through the real daemon.

Each answer is checked exactly, and after all the hostile input the daemon still
serves a normal request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from service_harness import IMAGE, Cloud, Service

pytestmark = pytest.mark.integration


def error_of(cloud: Cloud, req_id: str) -> tuple[str, dict[str, Any]]:
    got = cloud.response(req_id)
    return got.topic.rsplit("/", 1)[1], got.body["value"]


@pytest.fixture
def up(service: Service, cloud: Cloud) -> Cloud:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    return cloud


def test_refusals(up: Cloud, service: Service) -> None:
    cloud = up
    device = f"device id [{cloud.thing}]"

    def case(expect: tuple[int, str, str], **send: Any) -> None:
        req = cloud.send(send.pop("op", "start"), send.pop("feature", "ContainerFactory"),
                         send.pop("value", {}), **send)  # fmt: skip
        status, value = error_of(cloud, req)
        assert (int(status), value["error"], value["message"]) == expect, send
        assert value["status"] == expect[0]
        assert set(value) == {"error", "status", "message"}

    invalid = "messages:parameter.invalid"
    case((400, invalid, f"error parsing Ditto message received for {device}"), raw=b"{oops")
    big = json.dumps({"pad": "x" * (5 * 1024 * 1024)}).encode()
    status, value = error_of(cloud, cloud.send("create", "ContainerFactory", raw=big))
    # Over limits.mqtt_max_message_size (1 MiB): skipped unread, 413 (was 400 after parsing).
    assert (status, value["error"]) == ("413", "messages:payload.toolarge")
    case(
        (400, invalid, f"invalid Ditto message received for {device}"),
        raw=json.dumps({"topic": "", "path": "/x",
                        "headers": {"response-required": True}}).encode(),
    )  # fmt: skip
    case(
        (400, invalid, f"invalid Ditto message topic received for {device}"),
        raw=json.dumps({"topic": "a/b", "path": "/x",
                        "headers": {"response-required": True}}).encode(),
    )  # fmt: skip
    case(
        (400, invalid, f"invalid Ditto message received for {device}: "
         "correlation id header is missing"),
        headers={"response-required": True, "content-type": "application/json"},
    )  # fmt: skip
    case(
        (400, invalid, f"invalid Ditto message received for {device}: "
         "unsupported content type header text/plain"),
        headers={"response-required": True, "content-type": "text/plain", "correlation-id": "c"},
    )  # fmt: skip
    wrong = {
        "topic": "other/thing/things/live/messages/start",
        "path": "/features/ContainerFactory/inbox/messages/start",
        "headers": {"response-required": True, "correlation-id": "c"},
    }
    case((404, "messages:subject.notfound", "thing with ID = other:thing is not found"),
         raw=json.dumps(wrong).encode())  # fmt: skip
    case((404, "things:feature.notfound", "feature [Container:nope] not found "),
         feature="Container:nope")  # fmt: skip
    case((404, "messages:subject.notfound", "unsupported operation explode"),
         op="explode", feature="ContainerFactory")  # fmt: skip
    case((400, invalid, "invalid value for operation create: expected a JSON object"),
         op="create", value=["not", "an", "object"])  # fmt: skip
    case((500, "messages:execution.failed", "imageRef must be set"),
         op="create", value={"imageRef": "", "start": False})  # fmt: skip
    case((400, invalid, "invalid container name format : bad name"),
         op="createWithConfig", value={"imageRef": IMAGE, "name": "bad name"})  # fmt: skip

    # One-way commands get no answer but still run (docs/kanto-compatibility.md decision 1 keeps
    # Kanto's rule).
    quiet = cloud.send(
        "create", "ContainerFactory", {"imageRef": IMAGE, "start": False},
        headers={"response-required": False, "content-type": "application/json",
                 "correlation-id": "q"},
    )  # fmt: skip
    cloud.wait_twin("/features/Container:", lambda t: any(a == "modify" for a, _, _ in t))
    assert not [m for m in cloud.messages if f"/res/{quiet}/" in m.topic]

    # An empty request id is answered on res//<status> (docs/kanto-compatibility.md decision 1).
    req = cloud.send("create", "ContainerFactory", {"imageRef": ""}, req_id="")
    got = cloud.wait_for(
        lambda: next((m for m in cloud.messages if m.topic.endswith("/res//500")), None),
        "reply to an empty request id",
    )
    assert got.body["value"]["message"] == "imageRef must be set"
    assert req == ""

    # The daemon is still up and serving.
    assert service.proc is not None and service.proc.poll() is None
    ok = cloud.call("create", "ContainerFactory", {"imageRef": IMAGE, "start": False})
    assert ok.body["status"] == 200
