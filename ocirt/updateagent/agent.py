"""The update agent: Kanto's message handling plus ocirt's autonomous mode.

One worker thread handles everything in arrival order (desired states, commands,
current-state requests, republishing), as Kanto serialises them under its apply lock;
`publish(topic, payload, retain)` is the transport (`ocirt.updateagent.mqtt`).

Beyond Kanto: the current state is published again, debounced, whenever a container
changes; with `auto_apply` (or a desired state given through `ocirt apply`) the agent
drives DOWNLOAD -> UPDATE -> ACTIVATE -> CLEANUP itself, and ROLLBACK when a phase fails,
reporting every step on the feedback topic as if an Update Manager drove it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ocirt.manager.types import ContainerView, Event
from ocirt.updateagent import topics as wire
from ocirt.updateagent.desired import IdentificationFailed, parse_desired_state
from ocirt.updateagent.executor import Interrupted
from ocirt.updateagent.identify import ActionType, identify
from ocirt.updateagent.inventory import current_state
from ocirt.updateagent.journal import Journal, restore
from ocirt.updateagent.operation import COMMANDS, NEW_SUFFIX, Containers, Feedback, Operation
from ocirt.updateagent.settings import UpdateAgentSettings

_log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bool], None]


class Inventory(Protocol):
    def list(self) -> Sequence[ContainerView]: ...

    def subscribe(self, callback: Callable[[Event], None], /) -> Callable[[], None]: ...


@dataclass(frozen=True, slots=True)
class _Job:
    run: Callable[[], None]


_STOP = object()


@dataclass
class LocalRun:
    """A desired state applied through `ocirt apply`: its feedback, and when it ended."""

    activity_id: str
    feedback: list[Feedback]
    done: threading.Event
    outcome: str = ""


def now_ms() -> int:
    return int(time.time() * 1000)


class UpdateAgent:
    def __init__(
        self,
        settings: UpdateAgentSettings,
        manager: Inventory,
        containers: Containers,
        publish: Publish,
        version: str,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.topics = wire.Topics.for_domain(settings.domain)
        self._manager = manager
        self._containers = containers
        self._publish = publish
        self._version = version
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="ocirt-update-agent", daemon=True)
        self._operation: Operation | None = None
        self._republish_pending = False
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False
        self._local: dict[str, LocalRun] = {}
        self._journal = journal
        # Test hook and `ocirt apply`: called with each finished activity's id and outcome.
        self.on_finished: Callable[[str, str], None] | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._unsubscribe = self._manager.subscribe(self._on_event)
        self._thread.start()
        if self._journal is not None:
            self._submit(self._recover)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        interrupt = getattr(self._containers, "close", None)
        if interrupt is not None:
            interrupt()
        self._queue.put(_STOP)
        self._thread.join(timeout=60)

    def _submit(self, run: Callable[[], None]) -> None:
        if not self._closed:
            self._queue.put(_Job(run))

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            assert isinstance(job, _Job)
            if self._closed:
                continue  # stopping: the journal keeps an activity in progress
            try:
                job.run()
            except Interrupted:
                _log.info("update activity interrupted by the daemon's stop; resumed at start")
            except Exception:
                _log.exception("update agent task failed")

    # ---- inbound ------------------------------------------------------------------------

    def on_connected(self) -> None:
        """At every (re)connect: the current state, as Kanto publishes it then."""
        self._submit(lambda: self._send_current_state(f"initial-current-state-{now_ms()}"))

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            message = wire.parse_envelope(payload)
        except wire.EnvelopeError as exc:
            _log.warning("ignored a message on %s: %s", topic, exc)
            return
        if topic == self.topics.desired_state:
            self._submit(lambda: self._apply(message.activity_id, message.payload, auto=False))
        elif topic == self.topics.desired_state_command:
            self._submit(lambda: self._command(message.activity_id, message.payload))
        elif topic == self.topics.current_state_get:
            self._submit(lambda: self._send_current_state(message.activity_id))

    def apply_local(self, payload: object, activity_id: str = "") -> LocalRun:
        """`ocirt apply`: apply a desired state autonomously; `done` is set at its end."""
        activity = activity_id or f"local-{uuid.uuid4()}"
        run = LocalRun(activity, [], threading.Event())
        with self._lock:
            self._local[activity] = run
        self._submit(lambda: self._apply(activity, payload, auto=True))
        return run

    # ---- current state --------------------------------------------------------------------

    def _send_current_state(self, activity_id: str) -> None:
        views = list(self._manager.list())
        state = current_state(
            self.settings.domain, self._version, views, self.settings.verbose_inventory_report
        )
        self._publish(self.topics.current_state, wire.envelope(activity_id, now_ms(), state), True)

    def _on_event(self, event: Event) -> None:
        with self._lock:
            if self._republish_pending or self._closed:
                return
            self._republish_pending = True
        timer = threading.Timer(self.settings.republish_delay, self._republish_soon)
        timer.daemon = True
        timer.start()

    def _republish_soon(self) -> None:
        def republish() -> None:
            with self._lock:
                self._republish_pending = False
            self._send_current_state(f"current-state-{now_ms()}")

        self._submit(republish)

    # ---- desired state ----------------------------------------------------------------------

    def _feedback_sender(self, activity_id: str) -> Callable[[Feedback], None]:
        with self._lock:
            local = self._local.get(activity_id)

        def send(payload: Feedback) -> None:
            if local is not None:
                local.feedback.append(payload)
            self._publish(
                self.topics.desired_state_feedback,
                wire.envelope(activity_id, now_ms(), payload),
                False,
            )

        return send

    def _apply(self, activity_id: str, payload: object, *, auto: bool) -> None:
        send = self._feedback_sender(activity_id)
        try:
            desired = parse_desired_state(payload, self.settings.domain)
        except IdentificationFailed as exc:
            _log.warning("desired state %s refused: %s", activity_id, exc.message)
            send({"status": "IDENTIFICATION_FAILED", "message": exc.message})
            self._finished(activity_id, "IDENTIFICATION_FAILED")
            return
        for warning in desired.warnings:
            _log.warning("desired state %s: %s", activity_id, warning)
        system = (
            desired.system_containers
            if desired.system_containers is not None
            else self.settings.system_containers
        )
        send({"status": "IDENTIFYING"})
        found = identify(desired, self._manager.list(), system)
        operation = Operation.identified(
            activity_id, self.settings.domain, found, desired.baselines, self._containers, send
        )
        self._operation = operation
        self._keep(operation, auto or self.settings.auto_apply)
        operation.feedback("IDENTIFIED")
        if not found:
            operation.finished = True
            operation.outcome = "COMPLETED"
            operation.feedback("COMPLETED")
            self._after(operation)
            return
        if auto or self.settings.auto_apply:
            self._drive(operation)

    def _command(self, activity_id: str, payload: object) -> None:
        operation = self._operation
        if not isinstance(payload, dict):
            _log.error("skipping a command for activity %s without payload", activity_id)
            return
        command = payload.get("command")
        baseline = payload.get("baseline", "")
        if operation is None or operation.activity_id != activity_id:
            _log.warning(
                "ignoring command %s for activity %s: no such operation in progress",
                command,
                activity_id,
            )
            return
        if not isinstance(command, str) or command not in COMMANDS:
            _log.warning("ignoring unknown command %r", command)
            return
        operation.execute(command, baseline if isinstance(baseline, str) else "")
        self._after(operation)

    def _after(self, operation: Operation) -> None:
        if operation.finished:
            operation.on_change = None
            if self._operation is operation:
                self._operation = None
            self._finished(operation.activity_id, operation.outcome)

    # ---- surviving a restart -------------------------------------------------------------------

    def _keep(self, operation: Operation, autonomous: bool) -> None:
        """Journal the operation at each of its feedbacks (a new one replaces the last)."""
        journal = self._journal
        if journal is None:
            return

        def record() -> None:
            if self._closed:
                return  # what a stopping daemon does is not recorded: the next start redoes it
            # The final feedback (COMPLETED or INCOMPLETE) leaves once the record is gone.
            if operation.finished:
                journal.clear()
            else:
                journal.save(operation, autonomous)

        operation.on_change = record

    def _recover(self) -> None:
        """An activity the last daemon did not finish: resumed when it had not changed
        anything yet, else rolled back; its feedback says which."""
        assert self._journal is not None
        raw = self._journal.load()
        if raw is None:
            return
        activity = str(raw["activityId"])
        send = self._feedback_sender(activity)
        operation, autonomous = restore(raw, {"containers": self._containers, "send": send})
        self._operation = operation
        self._keep(operation, autonomous)
        untouched = all(
            a.new_id is None and not a.stopped_current and not a.renamed_current
            for a in operation.actions
        ) and all(
            b.status == "IDENTIFIED" for b in (operation.everything, *operation.baselines.values())
        )
        if untouched:
            _log.warning("resuming update activity %s after a restart", activity)
            operation.feedback("IDENTIFIED", "Resumed after a restart of the container manager.")
            if autonomous:
                self._drive(operation)
            return
        _log.warning("rolling back update activity %s after a restart", activity)
        operation.feedback(
            "ROLLBACK",
            "The container manager restarted during the update; rolling it back.",
        )
        self._adopt(operation)
        operation.execute("ROLLBACK", "", ordered=False)
        operation.execute("CLEANUP", "")
        self._after(operation)

    def _adopt(self, operation: Operation) -> None:
        """Fill in effects the journal missed: a crash can come after a container was
        created or renamed and before the next feedback recorded it."""
        views = list(self._manager.list())
        by_name = {v.name: v for v in views}
        known = {a.current_id for a in operation.actions} | {a.new_id for a in operation.actions}
        for action in operation.actions:
            current = next((v for v in views if v.id == action.current_id), None)
            if action.type is ActionType.DESTROY:
                reached_update = operation.everything.status not in (
                    "IDENTIFIED", "DOWNLOADING", "DOWNLOAD_SUCCESS", "DOWNLOAD_FAILURE",
                )  # fmt: skip
                if current is not None and reached_update and not current.state.status.is_active:
                    action.stopped_current = True
                continue
            if action.type not in (ActionType.CREATE, ActionType.RECREATE):
                continue
            if current is not None and current.name != action.name:
                action.renamed_current = True
            if action.new_id is None:
                for name in (action.name, action.name + NEW_SUFFIX):
                    view = by_name.get(name)
                    if view is not None and view.id not in known:
                        action.new_id = view.id
                        break

    def _finished(self, activity_id: str, outcome: str) -> None:
        _log.info("activity %s finished: %s", activity_id, outcome)
        with self._lock:
            local = self._local.pop(activity_id, None)
        if local is not None:
            local.outcome = outcome
            local.done.set()
        if self.on_finished is not None:
            self.on_finished(activity_id, outcome)

    # ---- autonomous mode ----------------------------------------------------------------------

    def _drive(self, operation: Operation) -> None:
        """DOWNLOAD, UPDATE, ACTIVATE, CLEANUP on all actions; ROLLBACK first when one fails
        (after a failed DOWNLOAD or UPDATE too, which Kanto's order cannot roll back)."""
        for command, success in (
            ("DOWNLOAD", "DOWNLOAD_SUCCESS"),
            ("UPDATE", "UPDATE_SUCCESS"),
            ("ACTIVATE", "ACTIVATION_SUCCESS"),
        ):
            baseline = operation.execute(command, "")
            if baseline is None or baseline.status != success:
                _log.warning("activity %s: %s failed; rolling back", operation.activity_id, command)
                operation.execute("ROLLBACK", "", ordered=False)
                break
        operation.execute("CLEANUP", "")
        self._after(operation)
