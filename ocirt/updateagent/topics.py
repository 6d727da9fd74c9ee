"""Topics and the message envelope of Kanto's update agent protocol. Pure: no I/O.

The prefix is the domain with `-` removed, plus `update` unless it already ends in it
(update-manager's `mqtt/update_agent_client.go`): domain `containers` -> `containersupdate`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# Bounds what one untrusted message may make us parse and hold.
MAX_PAYLOAD = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Topics:
    desired_state: str
    desired_state_command: str
    current_state_get: str
    current_state: str
    desired_state_feedback: str

    @classmethod
    def for_domain(cls, domain: str) -> Topics:
        prefix = domain.replace("-", "")
        if not prefix.endswith("update"):
            prefix += "update"
        return cls(
            desired_state=f"{prefix}/desiredstate",
            desired_state_command=f"{prefix}/desiredstate/command",
            current_state_get=f"{prefix}/currentstate/get",
            current_state=f"{prefix}/currentstate",
            desired_state_feedback=f"{prefix}/desiredstatefeedback",
        )

    @property
    def inbound(self) -> tuple[str, str, str]:
        return (self.desired_state, self.desired_state_command, self.current_state_get)


@dataclass(frozen=True, slots=True)
class Envelope:
    activity_id: str
    timestamp: int
    payload: object


class EnvelopeError(ValueError):
    pass


def parse_envelope(raw: bytes) -> Envelope:
    """`{"activityId","timestamp","payload"}`; raises EnvelopeError (Kanto only logs)."""
    if len(raw) > MAX_PAYLOAD:
        raise EnvelopeError(f"message of {len(raw)} bytes is larger than {MAX_PAYLOAD}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EnvelopeError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EnvelopeError("the envelope is not a JSON object")
    activity = data.get("activityId", "")
    timestamp = data.get("timestamp", 0)
    if not isinstance(activity, str):
        raise EnvelopeError("activityId is not a string")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise EnvelopeError("timestamp is not a number")
    return Envelope(activity, int(timestamp), data.get("payload"))


def envelope(activity_id: str, timestamp_ms: int, payload: object) -> bytes:
    return json.dumps(
        {"activityId": activity_id, "timestamp": timestamp_ms, "payload": payload},
        separators=(",", ":"),
    ).encode()
