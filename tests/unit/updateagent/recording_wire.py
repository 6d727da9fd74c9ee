"""A recording transport for the agent's unit tests: every publish, with waits."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

FEEDBACK = "containersupdate/desiredstatefeedback"


class Wire:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.cond = threading.Condition()

    def publish(self, topic: str, payload: bytes, retain: bool) -> None:
        with self.cond:
            self.messages.append((topic, json.loads(payload), retain))
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], Any]) -> Any:
        with self.cond:
            result = self.cond.wait_for(predicate, 10)
        assert result
        return result

    def feedback(self, activity: str) -> list[dict[str, Any]]:
        return [
            body["payload"]
            for topic, body, _ in self.messages
            if topic == FEEDBACK and body["activityId"] == activity
        ]

    def statuses(self, activity: str) -> list[str]:
        return [f["status"] for f in self.feedback(activity)]

    def wait_status(self, activity: str, status: str) -> None:
        self.wait(lambda: status in self.statuses(activity))
