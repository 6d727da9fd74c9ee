"""The Ditto protocol by value: every refusal row of docs/kanto-compatibility.md §1, and
responses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocirt.errors import FailedPrecondition
from ocirt.things import protocol as p

THING = p.ThingId.for_device("ns:gw")
TID = "ns:gw:edge:containers"
DTOPIC = "ns/gw:edge:containers/things/live/messages/start"
HEADERS = {"response-required": True, "content-type": "application/json", "correlation-id": "c1"}


def envelope(**overrides: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "topic": DTOPIC,
        "headers": dict(HEADERS),
        "path": "/features/Container:abc/inbox/messages/start",
        "value": {},
    }
    for key, value in overrides.items():
        if value is ...:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def parse(payload: Any, topic: str = f"command//{TID}/req/r1/start") -> Any:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return p.parse_command(topic, data, THING)


def reply_of(result: Any) -> dict[str, Any]:
    assert isinstance(result, p.Rejection), result
    out = p.rejection_response(result)
    assert out is not None
    return {"mqtt": out.topic, **out.json()}


def test_thing_id_splits_at_first_colon() -> None:
    assert p.ThingId("ns", "gw:edge:containers") == THING
    assert str(THING) == TID
    assert THING.topic_prefix == "ns/gw:edge:containers"
    assert THING.backup_name == "sup_back_ns_gw_edge_containers.json"


def test_well_formed_command() -> None:
    result = parse(envelope())
    assert result == p.Command(
        feature="Container:abc",
        operation="start",
        value={},
        has_value=True,
        reply=p.ReplyTo(TID, "r1", DTOPIC, "/features/Container:abc/inbox/messages/start", "c1"),
    )


@pytest.mark.parametrize(
    "topic",
    [
        f"command//{TID}/res/r1/start",
        f"command/t/{TID}/req/r1/start",
        f"command//{TID}/req/r1/",
        f"command//{TID}/req/r1/a/b",
        "command//other:thing:edge:containers/req/r1/start",
    ],
)
def test_foreign_topics_are_ignored(topic: str) -> None:
    assert isinstance(parse(envelope(), topic), p.Ignored)


def test_bad_json_gets_400_on_the_errors_topic() -> None:
    assert reply_of(parse(b"{not json")) == {
        "mqtt": f"command//{TID}/res/r1/400",
        "topic": "unknown/unknown/things/twin/errors",
        "headers": {"content-type": "application/json"},
        "path": "/",
        "value": {
            "error": "messages:parameter.invalid",
            "status": 400,
            "message": f"error parsing Ditto message received for device id [{TID}]",
        },
        "status": 400,
    }


@pytest.mark.parametrize("payload", [b"[]", b'"x"', b"null", b"\xff\xfe", b"", b"[" * 100000])
def test_non_object_payloads_are_parse_errors(payload: bytes) -> None:
    body = reply_of(parse(payload))
    assert body["status"] == 400
    assert body["value"]["message"].startswith("error parsing Ditto message")


def test_five_megabyte_payload_is_refused_without_parsing() -> None:
    big = json.dumps(envelope(value={"pad": "x" * (5 * 1024 * 1024)})).encode()
    body = reply_of(parse(big))
    assert body["mqtt"] == f"command//{TID}/res/r1/400"
    assert body["value"]["error"] == "messages:parameter.invalid"
    assert "exceeds 1048576 bytes" in body["value"]["message"]


@pytest.mark.parametrize(
    "overrides",
    [{"topic": ...}, {"path": ...}, {"topic": ""}, {"path": ""}, {"topic": 5}, {"path": None}],
)
def test_missing_topic_or_path(overrides: dict[str, Any]) -> None:
    body = reply_of(parse(envelope(**overrides)))
    assert body["mqtt"] == f"command//{TID}/res/r1/400"
    assert body["topic"] == "unknown/unknown/things/twin/errors"
    assert body["path"] == "/"
    assert body["headers"] == {"content-type": "application/json", "correlation-id": "c1"}
    assert body["value"] == {
        "error": "messages:parameter.invalid",
        "status": 400,
        "message": f"invalid Ditto message received for device id [{TID}]",
    }


@pytest.mark.parametrize("topic", ["ns/gw:edge:containers/things", "a/b/c", "x"])
def test_short_ditto_topic(topic: str) -> None:
    body = reply_of(parse(envelope(topic=topic)))
    assert body["value"]["message"] == (
        f"invalid Ditto message topic received for device id [{TID}]"
    )
    assert body["status"] == 400


def test_wrong_thing_is_404_subject_not_found() -> None:
    topic = "other/gw:edge:containers/things/live/messages/start"
    body = reply_of(parse(envelope(topic=topic)))
    assert body == {
        "mqtt": f"command//{TID}/res/r1/404",
        "topic": topic,
        "headers": {"content-type": "application/json", "correlation-id": "c1"},
        "path": "/features/Container:abc/inbox/messages/start",
        "value": {
            "error": "messages:subject.notfound",
            "status": 404,
            "message": "thing with ID = other:gw:edge:containers is not found",
        },
        "status": 404,
    }


@pytest.mark.parametrize(
    ("headers", "has_value", "problem"),
    [
        ({"response-required": True, "content-type": "application/json"}, True,
         "correlation id header is missing"),
        ({"response-required": True, "correlation-id": 7, "content-type": "application/json"},
         True, "correlation id header is missing"),
        ({"response-required": True, "correlation-id": "c1"}, True,
         "missing content type header"),
        ({"response-required": True, "correlation-id": "c1", "content-type": "text/plain"},
         True, "unsupported content type header text/plain"),
        ({"response-required": True, "correlation-id": "c1", "content-type": "application/json"},
         False, "unexpected content type header application/json"),
        ({"response-required": "yes", "correlation-id": "c1", "content-type": "application/json"},
         True, "response-required header must be a boolean"),
    ],
)  # fmt: skip
def test_header_errors(headers: dict[str, Any], has_value: bool, problem: str) -> None:
    env = envelope(headers=headers) if has_value else envelope(headers=headers, value=...)
    body = reply_of(parse(env))
    assert body["status"] == 400
    assert body["path"] == "/features/Container:abc/inbox/messages/start"
    assert body["value"]["message"] == (
        f"invalid Ditto message received for device id [{TID}]: {problem}"
    )


def test_header_check_comes_before_path_check() -> None:
    env = envelope(path="/garbage", headers={"response-required": True})
    assert "correlation id" in reply_of(parse(env))["value"]["message"]


def test_thing_level_path_is_404() -> None:
    body = reply_of(parse(envelope(path="/inbox/messages/start")))
    assert body["status"] == 404
    assert body["value"]["error"] == "messages:subject.notfound"
    assert body["value"]["message"].startswith(f"the target thing ID = {TID} does not have")


@pytest.mark.parametrize(
    "path", ["/features/X/outbox/messages/start", "/features/X/inbox/messages/", "/attributes"]
)
def test_other_paths_are_400(path: str) -> None:
    body = reply_of(parse(envelope(path=path)))
    assert body["status"] == 400
    assert body["value"]["message"] == f"missing operation name for device id [{TID}]"


def test_check_order_topic_before_thing_before_headers() -> None:
    # Every check fails at once: the first in Kanto's order decides.
    env = {"topic": "a/b", "path": "", "headers": {"response-required": True}}
    assert "invalid Ditto message received" in reply_of(parse(env))["value"]["message"]
    env = {"topic": "a/b", "path": "/x", "headers": {"response-required": True}}
    assert "topic received" in reply_of(parse(env))["value"]["message"]
    env = {"topic": "a/b/things/x", "path": "/x", "headers": {"response-required": True}}
    assert reply_of(parse(env))["status"] == 404


@pytest.mark.parametrize("required", [False, ...])
def test_one_way_commands_get_no_reply(required: Any) -> None:
    headers = dict(HEADERS)
    if required is ...:
        del headers["response-required"]
    else:
        headers["response-required"] = required
    result = parse(envelope(headers=headers))
    assert isinstance(result, p.Command)
    assert result.reply is None
    assert p.command_response(result, p.Outcome.done()) is None
    refused = parse(envelope(headers=headers, topic="x/y/things/z"))
    assert isinstance(refused, p.Rejection)
    assert p.rejection_response(refused) is None


def test_empty_request_id_is_answered_decision_1() -> None:
    result = parse(envelope(), topic=f"command//{TID}/req//start")
    assert isinstance(result, p.Command)
    out = p.command_response(result, p.Outcome.done())
    assert out is not None
    assert out.topic == f"command//{TID}/res//204"


def test_204_response_exactly() -> None:
    result = parse(envelope())
    assert isinstance(result, p.Command)
    out = p.command_response(result, p.Outcome.done())
    assert out is not None
    assert out.topic == f"command//{TID}/res/r1/204"
    assert out.json() == {
        "topic": DTOPIC,
        "headers": {"correlation-id": "c1"},
        "path": "/features/Container:abc/outbox/messages/start",
        "status": 204,
    }


def test_200_response_with_value_exactly() -> None:
    env = envelope(
        topic="ns/gw:edge:containers/things/live/messages/create",
        path="/features/ContainerFactory/inbox/messages/create",
        value={"imageRef": "x", "start": True},
    )
    result = parse(env, f"command//{TID}/req/r1/create")
    assert isinstance(result, p.Command)
    out = p.command_response(result, p.Outcome.ok("uuid-1"))
    assert out is not None
    assert out.topic == f"command//{TID}/res/r1/200"
    assert out.payload == (
        b'{"topic":"ns/gw:edge:containers/things/live/messages/create",'
        b'"headers":{"content-type":"application/json","correlation-id":"c1"},'
        b'"path":"/features/ContainerFactory/outbox/messages/create","value":"uuid-1",'
        b'"status":200}'
    )


def test_error_outcome_from_an_ocirt_error() -> None:
    error = p.DittoError.from_exception(FailedPrecondition("the container is dead"))
    outcome = p.Outcome.failed(error)
    assert outcome == p.Outcome(
        500,
        {"error": "messages:execution.failed", "status": 500, "message": "the container is dead"},
        True,
    )


def test_unknown_feature_is_404_decision_3() -> None:
    result = parse(envelope(path="/features/Container:nope/inbox/messages/start"))
    assert isinstance(result, p.Command)
    body = reply_of(p.unknown_feature(result))
    assert body["status"] == 404
    assert body["path"] == "/features/Container:nope/inbox/messages/start"
    assert body["value"] == {
        "error": "things:feature.notfound",
        "status": 404,
        "message": "feature [Container:nope] not found ",
    }


def test_trailing_commas_of_the_user_documents_are_read() -> None:
    assert p.decode_json(b'{"a":[1,2,],"b":{"c":"x, }",},}') == {"a": [1, 2], "b": {"c": "x, }"}}
    with pytest.raises(ValueError):
        p.decode_json(b'{"a":,}')


def test_value_null_counts_as_present() -> None:
    result = parse(envelope(value=None))
    assert isinstance(result, p.Command)
    assert result.has_value and result.value is None


@pytest.mark.parametrize(
    "payload",
    [
        b'{"deviceId":"ns:gw","tenantId":"t","policyId":"ns:p"}',
        b'{"deviceId":"ns:gw","tenantId":"t"}',
    ],
)
def test_identity(payload: bytes) -> None:
    identity = p.parse_identity(payload)
    assert identity.device_id == "ns:gw"
    assert identity.tenant_id == "t"
    assert str(identity.thing) == TID


@pytest.mark.parametrize(
    "payload",
    [b"x", b"[]", b"{}", b'{"deviceId":5}', b'{"deviceId":"a/b"}', b'{"deviceId":"a#"}',
     b'{"deviceId":"a","tenantId":"t/x"}'],
)  # fmt: skip
def test_bad_identity(payload: bytes) -> None:
    with pytest.raises(ValueError):
        p.parse_identity(payload)
