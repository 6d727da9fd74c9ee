"""The SoftwareUpdatable feature on the twin: commands in, twin messages out.

`handle` answers a command at once (204, or Kanto's 400/404) and hands accepted work to
the runner. Everything the feature publishes goes through the things client's one
publisher thread (`bind`): what the runner reports, the whole feature at each
bootstrap, and `installedDependencies` whenever a container appears or goes, whoever
created or removed it. Because the runner tells the publisher about a container it
created or removed before it reports the next step, the twin shows the dependency
change before INSTALLED and before REMOVED, as Kanto's conformance suite expects; the
manager's own event for the same change then finds nothing new to send.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ocirt.errors import InvalidArgument
from ocirt.health.gate import ActivationGate
from ocirt.manager.types import Event, EventKind, Status
from ocirt.swupdate import model
from ocirt.swupdate.fetch import ArtifactSource
from ocirt.swupdate.journal import Journal
from ocirt.swupdate.plan import Report
from ocirt.swupdate.runner import Runner
from ocirt.things.ports import ContainerManager
from ocirt.things.protocol import Code, Command, DittoError, Outbound, Outcome
from ocirt.things.twin import Twin

log = logging.getLogger(__name__)

FEATURE_PATH = f"/features/{model.FEATURE_ID}"
STATUS_PATH = f"{FEATURE_PATH}/properties/status"

Build = Callable[[Twin], list[Outbound]]
Post = Callable[[Build], None]


def modify(twin: Twin, path: str, value: object, has_value: bool = True) -> Outbound:
    """A twin modify; Kanto sends an empty map as a modify with no value at all."""
    body: dict[str, object] = {
        "topic": f"{twin.thing.topic_prefix}/things/twin/commands/modify",
        "headers": {"response-required": False},
        "path": path,
    }
    if has_value:
        body["value"] = value
    return Outbound(twin.topic, json.dumps(body, separators=(",", ":")).encode())


def report_messages(twin: Twin, report: Report) -> list[Outbound]:
    value = report.status.to_value()
    out = []
    if report.failed:
        out.append(modify(twin, f"{STATUS_PATH}/lastFailedOperation", value))
    out.append(modify(twin, f"{STATUS_PATH}/lastOperation", value))
    return out


class SoftwareUpdatable:
    """The feature. `bind` it to a publisher, then the client calls the rest."""

    def __init__(
        self,
        manager: ContainerManager,
        source: ArtifactSource,
        state_dir: Path,
        *,
        stop_timeout: float = 30.0,
        gate: ActivationGate | None = None,
    ) -> None:
        self._manager = manager
        self._post: Post | None = None
        self._runner = Runner(
            manager, source, Journal(state_dir), self, stop_timeout=stop_timeout, gate=gate
        )
        # Publisher thread only: container id -> image ref, and the map last sent.
        self._containers: dict[str, str] = {}
        self._sent: dict[str, object] | None = None

    # ---- commands (worker threads) ----------------------------------------------------------

    def handle(self, command: Command) -> Outcome:
        try:
            if command.operation == "install":
                model.parse_install(command.value)
            elif command.operation == "remove":
                model.parse_remove(command.value)
            else:
                message = model.unsupported_operation(command.operation)
                return Outcome.failed(DittoError.of(404, Code.SUBJECT_NOT_FOUND, message))
        except InvalidArgument as exc:
            return Outcome.failed(DittoError.of(400, Code.PARAMETER_INVALID, exc.message))
        try:
            self._runner.submit(command.operation, command.value)
        except OSError as exc:
            log.error("cannot journal the %s operation: %s", command.operation, exc)
            message = f"cannot accept the operation: {exc}"
            return Outcome.failed(DittoError.of(500, Code.EXECUTION_FAILED, message))
        return Outcome.done()

    # ---- the client's publisher -------------------------------------------------------------

    def bind(self, post: Post) -> None:
        self._post = post

    def close(self) -> None:
        self._runner.close()

    def republish(self, twin: Twin) -> list[Outbound]:
        """The whole feature, as at every bootstrap; the first one also starts the runner,
        so that what a restart interrupted is reported once someone can hear it."""
        # A container still being created or already on its way out is not installed.
        transient = (Status.CREATING, Status.DEAD)
        views = [v for v in self._manager.list() if v.state.status not in transient]
        self._containers = {str(v.id): v.image_ref for v in views}
        self._sent = model.installed_dependencies(self._containers.items())
        feature = model.FeatureStatus(self._sent).feature_value()
        self._runner.start()
        return [modify(twin, FEATURE_PATH, feature)]

    def on_event(self, twin: Twin, event: Event) -> list[Outbound]:
        if event.kind is EventKind.CREATED:
            self._containers[str(event.container.id)] = event.container.image_ref
        elif event.kind is EventKind.REMOVED:
            self._containers.pop(str(event.container.id), None)
        else:
            return []
        return self._dependencies(twin)

    def _dependencies(self, twin: Twin) -> list[Outbound]:
        if self._sent is None:
            return []
        current = model.installed_dependencies(self._containers.items())
        if current == self._sent:
            return []
        self._sent = current
        path = f"{STATUS_PATH}/installedDependencies"
        return [modify(twin, path, current, has_value=bool(current))]

    # ---- Reporter (the runner's thread) -------------------------------------------------------

    def _publish(self, build: Build) -> None:
        if self._post is None:
            log.warning("SoftwareUpdatable is not bound to a publisher; a report is lost")
            return
        self._post(build)

    def report(self, report: Report, /) -> None:
        self._publish(lambda twin: report_messages(twin, report))

    def installed(self, container_id: str, image_ref: str, /) -> None:
        def build(twin: Twin) -> list[Outbound]:
            self._containers[container_id] = image_ref
            return self._dependencies(twin)

        self._publish(build)

    def uninstalled(self, container_id: str, /) -> None:
        def build(twin: Twin) -> list[Outbound]:
            self._containers.pop(container_id, None)
            return self._dependencies(twin)

        self._publish(build)
