"""One activity: the identified actions and the commands that carry them out.

Kanto's `update_operation.go`, phase by phase and message by message. The order of the
commands is a small pure table (`refusal`); the effects go through the `Containers`
port, so unit tests drive every path with an in-memory fake. Every feedback is
`{"baseline","status","message"?,"actions":[all actions]}`, as Kanto sends it.

Where ocirt differs (docs/compatibility.md): a recreated container's replacement is
created under a temporary name (`<name>.new`; ocirt keeps names unique) and takes the
name at ACTIVATE, when the old one becomes `<name>.old`; ACTIVATE of a new container
passes only when the container is still running (and healthy, when its image has a
health check) after its activation check (`Containers.verify_activation`); ROLLBACK
also restarts containers that UPDATE stopped for a destroy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ocirt.config.model import ContainerConfig
from ocirt.errors import OcirtError
from ocirt.updateagent.desired import DesiredContainer
from ocirt.updateagent.identify import MESSAGES, ActionType, Identified

_log = logging.getLogger(__name__)

NEW_SUFFIX = ".new"
OLD_SUFFIX = ".old"

IDENTIFIED = "IDENTIFIED"
COMPLETED = "COMPLETED"
INCOMPLETE = "INCOMPLETE"

# command -> (statuses it may follow (none: any), status reported when refused)
_ORDER: dict[str, tuple[tuple[str, ...], str]] = {
    "DOWNLOAD": ((IDENTIFIED,), "DOWNLOAD_FAILURE"),
    "UPDATE": (("DOWNLOAD_SUCCESS",), "UPDATE_FAILURE"),
    "ACTIVATE": (("UPDATE_SUCCESS",), "ACTIVATION_FAILURE"),
    "ROLLBACK": (
        ("DOWNLOAD_SUCCESS", "UPDATE_SUCCESS", "ACTIVATION_FAILURE", "ACTIVATION_SUCCESS"),
        "ROLLBACK_FAILURE",
    ),
    "CLEANUP": ((), "CLEANUP_FAILURE"),
}
COMMANDS = tuple(_ORDER)


def failure_status(command: str) -> str:
    return _ORDER[command][1]


def refusal(command: str, status: str) -> str | None:
    """Kanto's text when `command` may not follow `status`; None when it may."""
    allowed, _ = _ORDER[command]
    if allowed and status not in allowed:
        return f"{command} is possible only after status {'|'.join(allowed)} is reported"
    return None


class Containers(Protocol):
    """What an activity needs of the container manager (ids are the manager's)."""

    def create(self, container: DesiredContainer, name: str, /) -> str: ...

    def start(self, container_id: str, /) -> None: ...

    def ensure_running(self, container_id: str, /) -> None: ...

    def is_active(self, container_id: str, /) -> bool: ...

    def stop(self, container_id: str, /) -> None: ...

    def update(self, container_id: str, config: ContainerConfig, /) -> None: ...

    def rename(self, container_id: str, name: str, /) -> None: ...

    def remove(self, container_id: str, /) -> None: ...

    def verify_activation(self, container_id: str, /) -> None:
        """Raise OcirtError unless the new container is running (and healthy)."""
        ...


@dataclass(slots=True)
class Action:
    """One container's action and its progress: the feedback `actions` entry."""

    name: str
    type: ActionType
    version: str
    desired: DesiredContainer | None
    current_id: str | None
    current_config: ContainerConfig | None
    status: str = IDENTIFIED
    message: str = ""
    new_id: str | None = None
    # Set when UPDATE stopped the current container (rollback starts it again).
    stopped_current: bool = False
    renamed_current: bool = False

    @classmethod
    def of(cls, found: Identified) -> Action:
        return cls(
            name=found.name,
            type=found.type,
            version=found.version,
            desired=found.desired,
            current_id=found.current.id if found.current else None,
            current_config=found.current.config if found.current else None,
            message=MESSAGES[found.type],
        )

    def feedback(self, domain: str) -> dict[str, object]:
        component: dict[str, object] = {"id": f"{domain}:{self.name}"}
        if self.version:
            component["version"] = self.version
        out: dict[str, object] = {"component": component, "status": self.status}
        if self.message:
            out["message"] = self.message
        return out


@dataclass(slots=True)
class Baseline:
    title: str
    actions: list[Action]
    status: str = IDENTIFIED


Feedback = dict[str, object]


@dataclass
class Operation:
    """The activity in progress; `execute` runs one command (serialised by the caller)."""

    activity_id: str
    domain: str
    actions: list[Action]
    baselines: dict[str, Baseline]
    containers: Containers
    send: Callable[[Feedback], None]
    everything: Baseline = field(init=False)
    finished: bool = False
    # The outcome once finished: COMPLETED or INCOMPLETE.
    outcome: str = ""
    # Called before each feedback leaves, so that what it reports is on disk first.
    on_change: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.everything = Baseline("", self.actions)

    @classmethod
    def identified(
        cls,
        activity_id: str,
        domain: str,
        found: Sequence[Identified],
        baselines: Sequence[tuple[str, Sequence[str]]],
        containers: Containers,
        send: Callable[[Feedback], None],
    ) -> Operation:
        actions = [Action.of(item) for item in found]
        table: dict[str, Baseline] = {
            f"{domain}:remove-components": Baseline(
                f"{domain}:remove-components",
                [a for a in actions if a.type is ActionType.DESTROY],
            )
        }
        for title, names in baselines:
            members = [a for name in names for a in actions if a.name == name and a.desired]
            table[title] = Baseline(title, members)
        return cls(activity_id, domain, actions, table, containers, send)

    # ---- feedback ---------------------------------------------------------------------

    def feedback(self, status: str, message: str = "", baseline: str = "") -> None:
        payload: Feedback = {}
        if baseline:
            payload["baseline"] = baseline
        payload["status"] = status
        if message:
            payload["message"] = message
        if self.actions:
            payload["actions"] = [a.feedback(self.domain) for a in self.actions]
        if self.on_change is not None:
            self.on_change()
        self.send(payload)

    def _progress(
        self,
        baseline: Baseline,
        status: str,
        action: Action | None,
        action_status: str,
        message: str,
    ) -> None:
        """Kanto's updateBaselineActionStatus."""
        if action is not None:
            action.status = action_status
            action.message = message
        baseline.status = status
        self.feedback(status, "", baseline.title)

    # ---- commands -----------------------------------------------------------------------

    def baseline(self, title: str) -> Baseline | None:
        if title in ("", "*"):
            self.everything.title = title
            return self.everything
        return self.baselines.get(title)

    def execute(self, command: str, title: str, *, ordered: bool = True) -> Baseline | None:
        """Run `command` on a baseline ("" or "*": all actions); returns the baseline, or
        None when the command was refused (the refusal is reported). `ordered=False` is
        autonomous mode's rollback after a failure Kanto could not roll back."""
        if command not in _ORDER:
            _log.warning("ignoring unknown command %s", command)
            return None
        baseline = self.baseline(title)
        if baseline is None:
            self.feedback(failure_status(command), f"Unknown baseline {title}", title)
            return None
        reason = refusal(command, baseline.status) if ordered else None
        if reason is not None:
            self.feedback(failure_status(command), reason, title)
            return None
        {
            "DOWNLOAD": self._download,
            "UPDATE": self._update,
            "ACTIVATE": self._activate,
            "ROLLBACK": self._rollback,
            "CLEANUP": self._cleanup,
        }[command](baseline)
        return baseline

    def _phase(
        self,
        baseline: Baseline,
        kinds: tuple[ActionType, ...],
        statuses: tuple[str, str, str],
        step: Callable[[Action], str],
    ) -> None:
        """Kanto's phase loop: each action in turn is reported in progress (the previous
        one with its success), the last one with the baseline's final status."""
        running, success, failure = statuses
        last: Action | None = None
        last_message = ""
        for action in baseline.actions:
            if action.type not in kinds:
                continue
            if last is not None:
                last.status = success
                last.message = last_message
            last = action
            self._progress(baseline, running, action, running, action.message)
            try:
                last_message = step(action)
            except OcirtError as exc:
                self._progress(baseline, failure, action, failure, exc.message)
                return
        self._progress(baseline, success, last, success, last_message)

    def _download(self, baseline: Baseline) -> None:
        def create(action: Action) -> str:
            assert action.desired is not None
            if action.new_id is None:
                name = action.name + (NEW_SUFFIX if action.type is ActionType.RECREATE else "")
                action.new_id = self.containers.create(action.desired, name)
            return "New container created."

        self._phase(
            baseline,
            (ActionType.CREATE, ActionType.RECREATE),
            ("DOWNLOADING", "DOWNLOAD_SUCCESS", "DOWNLOAD_FAILURE"),
            create,
        )

    def _update(self, baseline: Baseline) -> None:
        def update(action: Action) -> str:
            assert action.current_id is not None
            if action.type is ActionType.UPDATE:
                assert action.desired is not None
                self.containers.update(action.current_id, action.desired.config)
                return "Container instance is updated with new configuration."
            if self.containers.is_active(action.current_id):
                action.stopped_current = True
                self.containers.stop(action.current_id)
            return "Old container instance is stopped."

        self._phase(
            baseline,
            (ActionType.RECREATE, ActionType.DESTROY, ActionType.UPDATE),
            ("UPDATING", "UPDATE_SUCCESS", "UPDATE_FAILURE"),
            update,
        )

    def _activate(self, baseline: Baseline) -> None:
        def activate(action: Action) -> str:
            if action.type in (ActionType.CHECK, ActionType.UPDATE):
                assert action.current_id is not None
                self.containers.ensure_running(action.current_id)
                if action.type is ActionType.CHECK:
                    return "Existing container instance is running."
                return action.message
            assert action.new_id is not None
            if action.type is ActionType.RECREATE and not action.renamed_current:
                assert action.current_id is not None
                self.containers.rename(action.current_id, action.name + OLD_SUFFIX)
                action.renamed_current = True
                self.containers.rename(action.new_id, action.name)
            self.containers.start(action.new_id)
            self.containers.verify_activation(action.new_id)
            return "New container instance is started."

        self._phase(
            baseline,
            (ActionType.CHECK, ActionType.UPDATE, ActionType.CREATE, ActionType.RECREATE),
            ("ACTIVATING", "ACTIVATION_SUCCESS", "ACTIVATION_FAILURE"),
            activate,
        )

    def _rollback(self, baseline: Baseline) -> None:
        failure = False
        last: Action | None = None
        last_message = ""
        for action in baseline.actions:
            if last is not None:
                self._progress(baseline, "ROLLBACK", last, "UPDATE_FAILURE", last_message)
            last = action
            try:
                if action.type is ActionType.UPDATE:
                    self._progress(baseline, "ROLLBACK", action, "UPDATING", action.message)
                    assert action.current_id is not None and action.current_config is not None
                    self.containers.update(action.current_id, action.current_config)
                    self.containers.ensure_running(action.current_id)
                    last_message = (
                        "Update unsuccessful, but rollback succeeded - container "
                        "configuration restored from older instance."
                    )
                elif action.type in (ActionType.CREATE, ActionType.RECREATE):
                    self._progress(baseline, "ROLLBACK", action, "UPDATING", action.message)
                    if action.new_id is not None:
                        self.containers.remove(action.new_id)
                        action.new_id = None
                    if action.current_id is not None:
                        self._restore(action)
                        last_message = (
                            "Update unsuccessful, but rollback succeeded - new container "
                            "instance destroyed, old container instance restored."
                        )
                    else:
                        last_message = (
                            "Update unsuccessful, but rollback succeeded - new container "
                            "instance destroyed."
                        )
                else:
                    last = None
                    if action.type is ActionType.DESTROY and action.stopped_current:
                        # Beyond Kanto: what UPDATE stopped for a destroy runs again.
                        assert action.current_id is not None
                        self.containers.ensure_running(action.current_id)
                        action.stopped_current = False
            except OcirtError as exc:
                last_message = exc.message
                failure = True
        self._progress(
            baseline,
            "ROLLBACK_FAILURE" if failure else "ROLLBACK_SUCCESS",
            last,
            "UPDATE_FAILURE",
            last_message,
        )

    def _restore(self, action: Action) -> None:
        assert action.current_id is not None
        if action.renamed_current:
            self.containers.rename(action.current_id, action.name)
            action.renamed_current = False
        self.containers.ensure_running(action.current_id)
        action.stopped_current = False

    def _cleanup(self, baseline: Baseline) -> None:
        if baseline.title in ("", "*"):
            self.baselines.clear()
        else:
            self.baselines.pop(baseline.title, None)
        result = "CLEANUP_SUCCESS"
        if baseline.status != "ACTIVATION_SUCCESS":
            _log.warning(
                "no cleanup for baseline %r: its status is %s", baseline.title, baseline.status
            )
        else:
            for action in baseline.actions:
                if action.type not in (ActionType.RECREATE, ActionType.DESTROY):
                    continue
                assert action.current_id is not None
                error = ""
                try:
                    self.containers.remove(action.current_id)
                except OcirtError as exc:
                    error = exc.message
                if action.status == "UPDATE_SUCCESS" and action.type is ActionType.DESTROY:
                    if error:
                        action.status, action.message = "REMOVAL_FAILURE", error
                        result = "CLEANUP_FAILURE"
                    else:
                        action.status = "REMOVAL_SUCCESS"
                        action.message = "Old container instance is removed."
        self.feedback(result, "", baseline.title)
        if not self.baselines:
            self.finished = True
            success = baseline.status == "ACTIVATION_SUCCESS" and result == "CLEANUP_SUCCESS"
            self.outcome = COMPLETED if success else INCOMPLETE
            self.feedback(self.outcome)
