"""Wiring of the update agent for the daemon: agent, executor and MQTT client. Does I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ocirt.updateagent.agent import UpdateAgent
from ocirt.updateagent.executor import Health, ManagerContainers
from ocirt.updateagent.journal import Journal
from ocirt.updateagent.settings import UpdateAgentSettings


class UpdateAgentService:
    """`ocirt apply` works without a broker connection; MQTT only when `enable` is set."""

    def __init__(
        self,
        settings: UpdateAgentSettings,
        manager: Any,
        stop_timeout: float,
        mqtt: Any | None,
        health: Health | None = None,
        state_dir: Path | None = None,
    ) -> None:
        from ocirt import __version__

        self.client = None
        if mqtt is not None and settings.enable:
            from ocirt.updateagent.mqtt import AgentClient

            self.client = AgentClient(mqtt)
        publish = self.client.publish if self.client is not None else _nowhere
        containers = ManagerContainers(manager, settings, stop_timeout, health)
        journal = Journal(state_dir) if state_dir is not None else None
        self.agent = UpdateAgent(settings, manager, containers, publish, __version__, journal)

    def start(self) -> None:
        self.agent.start()
        if self.client is not None:
            self.client.start(self.agent)

    def apply(self, args: dict[str, Any]) -> object:
        """The local API's `apply`: the desired state (or an envelope holding one) applied
        autonomously; answers at the end with the outcome and every feedback."""
        value = args.get("value")
        activity = ""
        if isinstance(value, dict) and "payload" in value:
            given = value.get("activityId")
            activity = given if isinstance(given, str) else ""
            value = value["payload"]
        run = self.agent.apply_local(value, activity or "")
        if args.get("wait", True):
            run.done.wait()
        return {"activityId": run.activity_id, "status": run.outcome, "feedback": run.feedback}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.agent.close()


def _nowhere(topic: str, payload: bytes, retain: bool) -> None:
    """Without a broker, feedback goes to the daemon's log (the current state, published
    at every container change, only at debug level)."""
    import logging

    level = logging.DEBUG if retain else logging.INFO
    logging.getLogger("ocirt.updateagent").log(level, "%s: %s", topic, payload.decode())
