from __future__ import annotations

import json

import pytest

from ocirt.updateagent.topics import MAX_PAYLOAD, EnvelopeError, Topics, envelope, parse_envelope


@pytest.mark.parametrize(
    ("domain", "prefix"),
    [("containers", "containersupdate"), ("edge-containers", "edgecontainersupdate"),
     ("selfupdate", "selfupdate")],
)  # fmt: skip
def test_prefix_is_kantos(domain: str, prefix: str) -> None:
    topics = Topics.for_domain(domain)
    assert topics.inbound == (
        f"{prefix}/desiredstate",
        f"{prefix}/desiredstate/command",
        f"{prefix}/currentstate/get",
    )
    assert topics.current_state == f"{prefix}/currentstate"
    assert topics.desired_state_feedback == f"{prefix}/desiredstatefeedback"


def test_envelope_round_trip() -> None:
    raw = envelope("a1", 123, {"x": 1})
    assert json.loads(raw) == {"activityId": "a1", "timestamp": 123, "payload": {"x": 1}}
    parsed = parse_envelope(raw)
    assert (parsed.activity_id, parsed.timestamp, parsed.payload) == ("a1", 123, {"x": 1})


@pytest.mark.parametrize(
    "raw",
    [b"nope", b"[]", b'{"activityId": 5}', b'{"timestamp": "x"}', b"x" * (MAX_PAYLOAD + 1)],
)
def test_bad_envelopes_are_refused(raw: bytes) -> None:
    with pytest.raises(EnvelopeError):
        parse_envelope(raw)
