"""The Ditto-over-MQTT protocol of Kanto's things client, as pure data. No I/O.

Bytes and topics go in, typed values come out; values go in, (topic, bytes) come out.
The MQTT adapter (`mqtt.py`) owns the socket, `features.py` owns what a command does,
and `twin.py` the twin commands that mirror the containers.

Inbound commands are checked in Kanto's order (docs/kanto-compatibility.md §1); the first failing
check decides the answer::

    MQTT topic  command//<thingId>/req/<reqId>/<subject>     otherwise ignored, no reply
    size        payload <= MAX_PAYLOAD                         400
    (docs/kanto-compatibility.md decision 2) JSON        an object
       400 error parsing Ditto message envelope    topic and path non-empty strings
       400 invalid Ditto message
    Ditto topic >= 3 '/'; <ns>/<name> is our thing             400 topic / 404 subject.notfound
    headers     correlation-id string; content-type iff value  400 ...: <what is wrong>
    path        /features/<F>/inbox/messages/<op>              404 thing-level / 400

A reply is sent whenever `response-required` is true, also for an empty reqId
(docs/kanto-compatibility.md decision 1). A payload that cannot be read at all is answered with 400,
since no one can tell whether its sender wanted a reply (docs/kanto-compatibility.md decision 2).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ocirt.errors import OcirtError

# A generous bound for a container config; anything larger is refused before parsing.
MAX_PAYLOAD = 1024 * 1024

CONTAINER_FACTORY = "ContainerFactory"
CONTAINER_PREFIX = "Container:"
FACTORY_DEFINITION = "com.bosch.iot.suite.edge.containers:ContainerFactory:1.3.0"
CONTAINER_DEFINITION = "com.bosch.iot.suite.edge.containers:Container:1.5.0"

BOOTSTRAP_REQUEST_TOPIC = "edge/thing/request"
BOOTSTRAP_RESPONSE_TOPIC = "edge/thing/response"
BOOTSTRAP_REQUEST = b'{"topic":"","headers":null,"path":""}'

JSON_CONTENT = "application/json"
# Kanto's fallback when the request envelope cannot be used (thing_errors.go).
ERRORS_TOPIC = "unknown/unknown/things/twin/errors"

_COMMAND_TOPIC = re.compile(r"^command//([^/]+)/req/([^/]*)/([^/]+)$")
_FEATURE_PATH = re.compile(r"^/features/([^/]+)/inbox/messages/([^/]+)$")
_THING_PATH = re.compile(r"^/inbox/messages/([^/]+)$")
# Trailing commas, which the user documents' examples contain (see `decode_json`).
_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])', re.DOTALL)


class Code(Enum):
    """Ditto error codes that the front end itself produces."""

    PARAMETER_INVALID = "messages:parameter.invalid"
    SUBJECT_NOT_FOUND = "messages:subject.notfound"
    FEATURE_NOT_FOUND = "things:feature.notfound"
    EXECUTION_FAILED = "messages:execution.failed"


@dataclass(frozen=True, slots=True)
class DittoError:
    """A ThingError: what the client receives as the response value."""

    status: int
    code: str
    message: str

    @classmethod
    def of(cls, status: int, code: Code, message: str) -> DittoError:
        return cls(status, code.value, message)

    @classmethod
    def from_exception(cls, exc: OcirtError) -> DittoError:
        return cls(exc.status, exc.code, exc.message)

    def to_value(self) -> dict[str, object]:
        # Kanto's ThingError has exactly these keys, no "description".
        return {"error": self.code, "status": self.status, "message": self.message}


@dataclass(frozen=True, slots=True)
class ThingId:
    """A Ditto namespaced id, split at the first ':' (`ns`, `gw:edge:containers`)."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ThingId:
        namespace, _, name = text.partition(":")
        return cls(namespace, name)

    @classmethod
    def for_device(cls, device_id: str) -> ThingId:
        return cls.parse(f"{device_id}:edge:containers")

    def __str__(self) -> str:
        return f"{self.namespace}:{self.name}"

    @property
    def topic_prefix(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def backup_name(self) -> str:
        """File name of the known-features backup (features_container_factory_persistence)."""
        return f"sup_back_{str(self).replace(':', '_')}.json"


@dataclass(frozen=True, slots=True)
class Identity:
    """The bootstrap answer on edge/thing/response."""

    device_id: str
    tenant_id: str
    policy_id: str = ""

    @property
    def thing(self) -> ThingId:
        return ThingId.for_device(self.device_id)


@dataclass(frozen=True, slots=True)
class Outbound:
    """One MQTT message to publish (QoS 1, not retained)."""

    topic: str
    payload: bytes

    def json(self) -> Any:
        """The decoded payload (for logs and tests)."""
        return json.loads(self.payload)


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """Everything needed to answer one request."""

    thing_id: str
    req_id: str
    ditto_topic: str
    path: str
    correlation_id: str | None


@dataclass(frozen=True, slots=True)
class Command:
    """A well-formed operation on a feature. `reply` is None for a one-way command."""

    feature: str
    operation: str
    value: object
    has_value: bool
    reply: ReplyTo | None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request refused by the front end before any feature saw it."""

    error: DittoError
    reply: ReplyTo | None


@dataclass(frozen=True, slots=True)
class Ignored:
    """Not a command for us (wrong topic shape or another thing's subscription)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a feature operation produced: 200 with a value, 204 without, or an error."""

    status: int
    value: object = None
    has_value: bool = False

    @classmethod
    def ok(cls, value: object) -> Outcome:
        return cls(200, value, True)

    @classmethod
    def done(cls) -> Outcome:
        return cls(204)

    @classmethod
    def failed(cls, error: DittoError) -> Outcome:
        return cls(error.status, error.to_value(), True)


def decode_json(payload: bytes) -> Any:
    """json.loads that also accepts trailing commas before '}' or ']'.

    The examples in the user API documents (createWithConfig, update) carry trailing
    commas; clients copy them, so ocirt reads them instead of answering 400.
    Raises ValueError for anything else that is not JSON.
    """
    text = payload.decode("utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        repaired = _TRAILING_COMMA.sub(lambda m: m.group(1) or m.group(2), text)
        if repaired == text:
            raise
        return json.loads(repaired)


def parse_identity(payload: bytes) -> Identity:
    """The bootstrap response. Raises ValueError when it is not usable."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("bootstrap response too large")
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"bootstrap response is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("bootstrap response is not a JSON object")
    device_id = data.get("deviceId")
    tenant_id = data.get("tenantId", "")
    policy_id = data.get("policyId", "")
    if not isinstance(device_id, str) or not device_id or "/" in device_id:
        raise ValueError("bootstrap response has no usable deviceId")
    if not isinstance(tenant_id, str) or "/" in tenant_id or "+" in tenant_id:
        raise ValueError("bootstrap response has an unusable tenantId")
    if not isinstance(policy_id, str):
        policy_id = ""
    if any(c in device_id for c in "+#"):
        raise ValueError("bootstrap response has an unusable deviceId")
    return Identity(device_id, tenant_id, policy_id)


def command_subscription(thing: ThingId) -> str:
    return f"command//{thing}/req/#"


def topic_reply(topic: str) -> ReplyTo | None:
    """Where to answer a request known by its MQTT topic alone (its payload was never
    read): the errors topic under the request's id, as for an unreadable payload
    (docs/kanto-compatibility.md decision 2). None when the topic is not a command topic."""
    match = _COMMAND_TOPIC.match(topic)
    if match is None:
        return None
    thing_id, req_id, _subject = match.groups()
    return _fallback_reply(thing_id, req_id, None)


def _invalid(message: str) -> DittoError:
    return DittoError.of(400, Code.PARAMETER_INVALID, message)


def _fallback_reply(thing_id: str, req_id: str, correlation_id: str | None) -> ReplyTo:
    return ReplyTo(thing_id, req_id, ERRORS_TOPIC, "/", correlation_id)


def parse_command(topic: str, payload: bytes, thing: ThingId) -> Command | Rejection | Ignored:
    """Check one inbound message in Kanto's order and type it."""
    match = _COMMAND_TOPIC.match(topic)
    if match is None:
        return Ignored(f"not a command topic: {topic!r}")
    thing_id, req_id, _subject = match.groups()
    if thing_id != str(thing):
        return Ignored(f"command for another thing: {thing_id!r}")
    device = f"device id [{thing_id}]"

    if len(payload) > MAX_PAYLOAD:
        error = _invalid(
            f"error parsing Ditto message received for {device}: "
            f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD} bytes"
        )
        return Rejection(error, _fallback_reply(thing_id, req_id, None))
    try:
        envelope = decode_json(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        envelope = None
    if not isinstance(envelope, dict):
        error = _invalid(f"error parsing Ditto message received for {device}")
        return Rejection(error, _fallback_reply(thing_id, req_id, None))

    headers_raw = envelope.get("headers")
    headers: Mapping[str, object] = headers_raw if isinstance(headers_raw, dict) else {}
    correlation = headers.get("correlation-id")
    correlation_id = correlation if isinstance(correlation, str) else None
    required = headers.get("response-required", False)
    # A non-bool response-required is a header error that deserves an answer
    # (docs/kanto-compatibility.md decision 2).
    wants_reply = required is not False
    fallback = _fallback_reply(thing_id, req_id, correlation_id) if wants_reply else None

    ditto_topic = envelope.get("topic")
    path = envelope.get("path")
    if not isinstance(ditto_topic, str) or not ditto_topic or not isinstance(path, str) or not path:
        return Rejection(_invalid(f"invalid Ditto message received for {device}"), fallback)

    segments = ditto_topic.split("/")
    if len(segments) < 4:
        return Rejection(_invalid(f"invalid Ditto message topic received for {device}"), fallback)
    reply = ReplyTo(thing_id, req_id, ditto_topic, path, correlation_id) if wants_reply else None
    addressed = f"{segments[0]}:{segments[1]}"
    if addressed != str(thing):
        error = DittoError.of(
            404, Code.SUBJECT_NOT_FOUND, f"thing with ID = {addressed} is not found"
        )
        return Rejection(error, reply)

    header_problem = _header_problem(headers, "value" in envelope)
    if header_problem:
        error = _invalid(f"invalid Ditto message received for {device}: {header_problem}")
        return Rejection(error, reply)

    feature_match = _FEATURE_PATH.match(path)
    if feature_match is None:
        if _THING_PATH.match(path):
            error = DittoError.of(
                404,
                Code.SUBJECT_NOT_FOUND,
                f"the target thing ID = {thing_id} does not have e registered operations "
                "handler - thus, the command will not be processed",
            )
        else:
            error = _invalid(f"missing operation name for {device}")
        return Rejection(error, reply)
    feature, operation = feature_match.groups()
    return Command(feature, operation, envelope.get("value"), "value" in envelope, reply)


def _header_problem(headers: Mapping[str, object], has_value: bool) -> str:
    if not isinstance(headers.get("correlation-id"), str):
        return "correlation id header is missing"
    required = headers.get("response-required", False)
    if not isinstance(required, bool):
        return "response-required header must be a boolean"
    content_type = headers.get("content-type")
    if has_value:
        if content_type is None:
            return "missing content type header"
        if content_type != JSON_CONTENT:
            return f"unsupported content type header {content_type}"
    elif content_type is not None:
        return f"unexpected content type header {content_type}"
    return ""


def _response(reply: ReplyTo, path: str, outcome: Outcome) -> Outbound:
    headers: dict[str, object] = {}
    # Kanto sets content-type on every response except a 204 (DOC≠CODE, §1).
    if outcome.status != 204:
        headers["content-type"] = JSON_CONTENT
    if reply.correlation_id is not None:
        headers["correlation-id"] = reply.correlation_id
    body: dict[str, object] = {"topic": reply.ditto_topic, "headers": headers, "path": path}
    if outcome.has_value:
        body["value"] = outcome.value
    body["status"] = outcome.status
    topic = f"command//{reply.thing_id}/res/{reply.req_id}/{outcome.status}"
    return Outbound(topic, compact_json(body))


def command_response(command: Command, outcome: Outcome) -> Outbound | None:
    """The answer to a command that reached its feature; None for a one-way command."""
    if command.reply is None:
        return None
    path = f"/features/{command.feature}/outbox/messages/{command.operation}"
    return _response(command.reply, path, outcome)


def rejection_response(rejection: Rejection) -> Outbound | None:
    """The answer to a refused request: Kanto echoes the request's own path."""
    if rejection.reply is None:
        return None
    return _response(rejection.reply, rejection.reply.path, Outcome.failed(rejection.error))


def unknown_feature(command: Command) -> Rejection:
    """Decision 3: a feature that does not exist is 404 things:feature.notfound."""
    # Kanto's text, trailing space included, so clients matching on it keep working.
    error = DittoError.of(404, Code.FEATURE_NOT_FOUND, f"feature [{command.feature}] not found ")
    return Rejection(error, command.reply)


def compact_json(value: object) -> bytes:
    """The wire form of every outbound message: compact UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def container_feature_id(container_id: str) -> str:
    """The feature id of a container on the twin: `Container:<id>`."""
    return f"{CONTAINER_PREFIX}{container_id}"
