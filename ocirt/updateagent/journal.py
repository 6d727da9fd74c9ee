"""The activity in progress, kept on disk so that it survives a daemon restart or a
power cut. Does I/O (one file, written atomically: temp, fsync, rename).

Written at every feedback of the activity (so every recorded effect, such as the id of a
container DOWNLOAD created, is on disk before the next step) and removed when it ends.
`load` reads it back into plain values; `ocirt.updateagent.agent` decides whether to
resume or roll back. A file that cannot be read is set aside and ignored.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from ocirt.atomic import Durability, write_atomic
from ocirt.config.ditto import parse_container_config, to_ditto_config
from ocirt.errors import OcirtError
from ocirt.updateagent.desired import DesiredContainer
from ocirt.updateagent.identify import ActionType
from ocirt.updateagent.operation import Action, Baseline, Operation

_log = logging.getLogger(__name__)
FILE = "activity.json"
MAX_BYTES = 4 * 1024 * 1024


def _action_json(action: Action) -> dict[str, Any]:
    desired = action.desired
    return {
        "name": action.name,
        "type": action.type.value,
        "version": action.version,
        "desired": None
        if desired is None
        else {
            "name": desired.name,
            "version": desired.version,
            "image": desired.image_ref,
            "config": to_ditto_config(desired.config),
        },
        "currentId": action.current_id,
        "currentConfig": None
        if action.current_config is None
        else to_ditto_config(action.current_config),
        "status": action.status,
        "message": action.message,
        "newId": action.new_id,
        "stoppedCurrent": action.stopped_current,
        "renamedCurrent": action.renamed_current,
    }


def dump(operation: Operation, autonomous: bool) -> dict[str, Any]:
    index = {id(a): i for i, a in enumerate(operation.actions)}
    return {
        "activityId": operation.activity_id,
        "domain": operation.domain,
        "autonomous": autonomous,
        "actions": [_action_json(a) for a in operation.actions],
        "all": operation.everything.status,
        "baselines": [
            {"title": b.title, "status": b.status, "actions": [index[id(a)] for a in b.actions]}
            for b in operation.baselines.values()
        ],
    }


def _action(raw: dict[str, Any]) -> Action:
    desired_raw = raw.get("desired")
    desired = None
    if desired_raw is not None:
        desired = DesiredContainer(
            str(desired_raw["name"]),
            str(desired_raw["version"]),
            str(desired_raw["image"]),
            parse_container_config(desired_raw["config"]),
        )
    current = raw.get("currentConfig")
    return Action(
        name=str(raw["name"]),
        type=ActionType(raw["type"]),
        version=str(raw["version"]),
        desired=desired,
        current_id=raw.get("currentId"),
        current_config=None if current is None else parse_container_config(current),
        status=str(raw["status"]),
        message=str(raw["message"]),
        new_id=raw.get("newId"),
        stopped_current=bool(raw.get("stoppedCurrent")),
        renamed_current=bool(raw.get("renamedCurrent")),
    )


def restore(raw: dict[str, Any], operation_args: dict[str, Any]) -> tuple[Operation, bool]:
    """The operation of a journal (`operation_args`: containers and send)."""
    actions = [_action(a) for a in raw["actions"]]
    baselines = {
        str(b["title"]): Baseline(str(b["title"]), [actions[i] for i in b["actions"]], b["status"])
        for b in raw["baselines"]
    }
    operation = Operation(
        str(raw["activityId"]), str(raw["domain"]), actions, baselines, **operation_args
    )
    operation.everything.status = str(raw["all"])
    return operation, bool(raw.get("autonomous"))


class Journal:
    def __init__(self, directory: Path) -> None:
        self.path = directory / FILE

    def save(self, operation: Operation, autonomous: bool) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            data = json.dumps(dump(operation, autonomous), separators=(",", ":"))
            write_atomic(self.path, data, mode=0o600, durability=Durability.FULL)
        except OSError as exc:
            _log.error("cannot save the update activity: %s", exc)

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            _log.error("cannot remove the update activity record: %s", exc)

    def load(self) -> dict[str, Any] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            _log.error("cannot read the update activity record: %s", exc)
            return None
        try:
            if len(raw) > MAX_BYTES:
                raise ValueError("too large")
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            # Validate by building it once (a bad record must not stop the daemon).
            restore(data, {"containers": None, "send": lambda p: None})
            return data
        except (ValueError, KeyError, TypeError, IndexError, OcirtError) as exc:
            aside = self.path.with_suffix(".bad")
            _log.error("update activity record unreadable (%s); moved to %s", exc, aside)
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            return None
