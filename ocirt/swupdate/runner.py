"""Carries install and remove operations out, one at a time. Does I/O (through its ports).

One worker thread takes the journaled operations in order (Kanto serialises them too)
and drives the container manager through its public API. What it reports goes to a
`Reporter`, which publishes in the order it is told.

Where ocirt does better than Kanto (docs/compatibility.md):
- an install that fails once its first container exists leaves nothing of the module
  behind: the containers it created are removed, and a container it set aside because
  the module brings one of the same name is given its name back and started again if
  it was running; the report says so;
- a module whose descriptor names an existing container replaces that container
  (create the new one, stop the old, start the new, remove the old) where Kanto fails
  on the name;
- a started container must pass the activation gate (`ocirt.health.gate`: it keeps
  running, and turns healthy when its image has a health check); a failure is the
  install's rollback and FINISHED_ERROR saying why (Kanto reports success once started);
- a descriptor's `container_id` is the container's id, as in Kanto, unless the container
  the module replaces holds it (that one is removed only once the new one runs);
- after a restart, an operation the last run did not finish goes on: an install still
  downloading resumes its download, one that was creating or starting containers is
  rolled back and reported FINISHED_ERROR; it is never left at INSTALLING.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Protocol

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.config.reader import load_json
from ocirt.daemon.deployment import read_descriptor
from ocirt.errors import NotFound, OcirtError, ValidationError
from ocirt.health.gate import ActivationGate, Interrupted
from ocirt.manager.faults import crash_point
from ocirt.manager.types import StopOptions
from ocirt.swupdate import plan
from ocirt.swupdate.fetch import ArtifactSource
from ocirt.swupdate.journal import Entry, Journal
from ocirt.swupdate.model import (
    Artifact,
    InstallRequest,
    Module,
    ModuleId,
    OperationStatus,
    Rejected,
    Status,
    check_checksum,
    parse_install,
    parse_remove,
)
from ocirt.swupdate.plan import Report
from ocirt.things.ports import ContainerManager

log = logging.getLogger(__name__)

# Journal phases of the module being installed.
PHASE_DOWNLOADING = "downloading"
PHASE_INSTALLING = "installing"
# Every container runs: what is left is removing the ones it replaced, and the report.
PHASE_STARTED = "started"
# The module's end is reported.
PHASE_DONE = "done"
RESTART_MESSAGE = "the daemon stopped while the module was being installed"


class Reporter(Protocol):
    def report(self, report: Report, /) -> None: ...

    def installed(self, container_id: str, image_ref: str, /) -> None:
        """A container now exists (the dependency map is brought up to date first)."""
        ...

    def uninstalled(self, container_id: str, /) -> None: ...


class _Failure(Exception):
    def __init__(self, message: str, *, rejected: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.rejected = rejected


@dataclass(frozen=True, slots=True)
class _Descriptor:
    image_ref: str
    config: ContainerConfig
    name: str | None
    container_id: str | None = None


class Runner:
    def __init__(
        self,
        manager: ContainerManager,
        source: ArtifactSource,
        journal: Journal,
        reporter: Reporter,
        *,
        stop_timeout: float = 30.0,
        gate: ActivationGate | None = None,
    ) -> None:
        self._manager = manager
        self._source = source
        self._journal = journal
        self._reporter = reporter
        self._stop_timeout = stop_timeout
        # Without a health monitor the gate still checks that each started container runs.
        self._gate = gate if gate is not None else ActivationGate(manager, monitor=0.0)
        self._queue: queue.Queue[tuple[Entry, bool] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ocirt-swupdate", daemon=True)
        self._lock = threading.Lock()
        self._started = False

    # ---- public ------------------------------------------------------------------------

    def submit(self, kind: str, value: object) -> None:
        """Journal an accepted operation and queue it (raises OSError if it cannot be kept)."""
        with self._lock:
            entry = self._journal.add(kind, value)
        self._queue.put((entry, False))

    def start(self) -> None:
        """Queue what the last run left unfinished, then start working. Once."""
        with self._lock:
            if self._started:
                return
            self._started = True
            for entry in self._journal.pending():
                log.info("resuming %s operation %d left by the last run", entry.kind, entry.seq)
                self._queue.put((entry, True))
        self._thread.start()

    def close(self) -> None:
        self._gate.close()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    # ---- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            entry, resumed = item
            try:
                if entry.kind == "install":
                    self._install(entry, resumed)
                else:
                    self._remove(entry, resumed)
            except Interrupted:
                # The daemon is stopping: the journal keeps the entry, and the next start
                # rolls the module back and reports it.
                log.warning("%s operation %d interrupted by the stop", entry.kind, entry.seq)
                return
            except Exception as exc:
                log.exception("%s operation %d failed unexpectedly", entry.kind, entry.seq)
                self._report_crash(entry, exc)
            try:
                self._journal.done(entry)
            except OSError as exc:
                log.warning("cannot drop journal entry %d: %s", entry.seq, exc)

    # ---- install -----------------------------------------------------------------------

    def _install(self, entry: Entry, resumed: bool) -> None:
        request = parse_install(entry.value)
        first = int(entry.progress.get("module", 0)) if resumed else 0
        for index, module in enumerate(request.modules):
            if index < first:
                continue
            phase = entry.progress.get("phase") if resumed and index == first else None
            if phase == PHASE_DONE:
                continue
            if phase == PHASE_INSTALLING:
                self._interrupted(entry, request, module)
            elif phase == PHASE_STARTED:
                self._succeeded(entry, request.correlation_id, module.module)
            else:
                if phase is None:
                    self._journal.update(
                        entry, module=index, phase=PHASE_DOWNLOADING, created=[], displaced=[]
                    )
                self._install_module(entry, request.correlation_id, index, module)
            self._journal.update(entry, phase=PHASE_DONE)

    def _install_module(
        self, entry: Entry, correlation_id: str, index: int, module: Module
    ) -> None:
        ident = module.module
        for status in plan.DOWNLOAD_CHAIN:
            self._reporter.report(plan.step(correlation_id, ident, status))
        try:
            descriptors = [
                self._download(entry, index, number, artifact)
                for number, artifact in enumerate(module.artifacts)
            ]
        except _Failure as failure:
            self._fail(correlation_id, ident, failure.message, failure.rejected)
            return
        for status in plan.INSTALL_CHAIN:
            self._reporter.report(plan.step(correlation_id, ident, status))
        self._journal.update(entry, phase=PHASE_INSTALLING)
        try:
            self._create_and_start(entry, correlation_id, ident, descriptors)
        except (OcirtError, OSError) as exc:
            message = (
                exc.message if isinstance(exc, OcirtError) else f"cannot keep the journal: {exc}"
            )
            log.error("install of %s.%s failed: %s", ident.name, ident.version, message)
            notes = self._roll_back(entry)
            self._fail(correlation_id, ident, f"{message}{notes}", False)
            return
        self._journal.update(entry, phase=PHASE_STARTED)
        self._succeeded(entry, correlation_id, ident)

    def _succeeded(self, entry: Entry, correlation_id: str, ident: ModuleId) -> None:
        """The new containers run: the ones they replace go, and the module is done."""
        for displaced in entry.progress.get("displaced", []):
            try:
                self._manager.remove(ContainerId(displaced["id"]), True)
            except NotFound:
                pass
            except OcirtError as exc:
                log.warning("cannot remove the replaced container %s: %s", displaced["id"], exc)
        self._reporter.report(plan.step(correlation_id, ident, Status.FINISHED_SUCCESS))

    def _download(self, entry: Entry, module: int, number: int, artifact: Artifact) -> _Descriptor:
        url = artifact.url()
        if url is None:
            raise _Failure(
                f"the SoftwareArtifact [{artifact.filename}] has no HTTP or HTTPS download URL"
            )
        try:
            body = self._source.fetch(
                url, self._journal.partial(entry, module, number), artifact.size
            )
        except OcirtError as exc:
            raise _Failure(exc.message) from exc
        except OSError as exc:
            raise _Failure(f"download of {url} failed: {exc}") from exc
        try:
            check_checksum(body, artifact.checksums)
        except Rejected as exc:
            raise _Failure(str(exc), rejected=True) from exc
        try:
            decoded = load_json(body)
        except ValidationError as exc:
            raise _Failure(exc.message) from exc
        if not isinstance(decoded, dict):
            raise _Failure(f"the SoftwareArtifact [{artifact.filename}] is not a JSON object")
        try:
            read = read_descriptor(body, artifact.filename)
        except ValidationError as exc:
            raise _Failure(exc.message, rejected=True) from exc
        return _Descriptor(read.image_ref, read.config, read.name, read.container_id)

    def _create_and_start(
        self, entry: Entry, correlation_id: str, ident: ModuleId, descriptors: list[_Descriptor]
    ) -> None:
        created: list[str] = []
        displaced: list[dict[str, object]] = []
        for descriptor in descriptors:
            requested = descriptor.container_id
            if descriptor.name is not None:
                existing = next(
                    (v for v in self._manager.list() if v.name == descriptor.name), None
                )
                if existing is not None:
                    if requested == existing.id:
                        requested = None  # it keeps its id until the new one runs
                    aside = f"{descriptor.name}.replaced-{entry.seq}"
                    displaced.append(
                        {
                            "id": existing.id,
                            "name": descriptor.name,
                            "aside": aside,
                            "running": existing.state.status.is_active,
                        }
                    )
                    self._journal.update(entry, displaced=displaced)
                    self._manager.rename(existing.id, aside)
            view = self._manager.create(
                descriptor.image_ref, descriptor.config, descriptor.name, container_id=requested
            )
            created.append(view.id)
            self._journal.update(entry, created=created)
            self._reporter.installed(view.id, view.image_ref)
        self._reporter.report(plan.step(correlation_id, ident, Status.INSTALLED))
        crash_point("swupdate:installed")
        for old in displaced:
            if old["running"]:
                options = StopOptions("SIGTERM", self._stop_timeout, True)
                self._manager.stop(ContainerId(str(old["id"])), options)
        for cid in created:
            self._manager.start(ContainerId(cid))
        for cid in created:
            self._gate.verify(cid)

    def _roll_back(self, entry: Entry) -> str:
        """Undo a module's partial install; returns what to add to the report's message."""
        removed: list[str] = []
        restored: list[str] = []
        problems: list[str] = []
        for cid in reversed(entry.progress.get("created", [])):
            try:
                self._manager.remove(ContainerId(cid), True)
            except NotFound:
                pass
            except OcirtError as exc:
                problems.append(f"cannot remove {cid}: {exc.message}")
                continue
            removed.append(cid)
            self._reporter.uninstalled(cid)
        for old in entry.progress.get("displaced", []):
            cid = ContainerId(str(old["id"]))
            try:
                view = self._manager.get(cid)
                if view.name != old["name"]:
                    self._manager.rename(cid, str(old["name"]))
                if old["running"] and not self._manager.get(cid).state.status.is_active:
                    self._manager.start(cid)
                restored.append(f"{old['name']} ({cid})")
            except OcirtError as exc:
                problems.append(f"cannot restore {old['name']} ({cid}): {exc.message}")
        parts = []
        if removed:
            parts.append("removed the new container(s) " + ", ".join(removed))
        if restored:
            parts.append("restored " + ", ".join(restored))
        parts.extend(problems)
        if not parts:
            return ""
        return "; the install was rolled back: " + "; ".join(parts)

    def _interrupted(self, entry: Entry, request: InstallRequest, module: Module) -> None:
        log.warning("install of %s was interrupted by a restart; rolling back", module.module.name)
        notes = self._roll_back(entry)
        self._fail(request.correlation_id, module.module, RESTART_MESSAGE + notes, False)

    def _report_crash(self, entry: Entry, exc: Exception) -> None:
        """A bug must not leave the twin at an intermediate state: end what was under way."""
        try:
            if entry.kind == "install":
                request = parse_install(entry.value)
                index = min(int(entry.progress.get("module", 0)), len(request.modules) - 1)
                phase = entry.progress.get("phase")
                if phase != PHASE_DONE:
                    notes = self._roll_back(entry) if phase == PHASE_INSTALLING else ""
                    message = f"internal runtime error: {exc}{notes}"
                    ident = request.modules[index].module
                    self._fail(request.correlation_id, ident, message, False)
            else:
                request_r = parse_remove(entry.value)
                failed = plan.Report(
                    OperationStatus(
                        request_r.correlation_id,
                        Status.FINISHED_ERROR,
                        software=request_r.software,
                        message=f"internal runtime error: {exc}",
                    ),
                    failed=True,
                )
                self._reporter.report(failed)
        except Exception:
            log.exception("cannot report the failure of operation %d", entry.seq)

    def _fail(self, correlation_id: str, ident: ModuleId, message: str, rejected: bool) -> None:
        self._reporter.report(plan.module_failed(correlation_id, ident, message, rejected=rejected))

    # ---- remove ------------------------------------------------------------------------

    def _remove(self, entry: Entry, resumed: bool) -> None:
        request = parse_remove(entry.value)
        results: list[str | None] = list(entry.progress.get("results", [])) if resumed else []
        current = entry.progress.get("current") if resumed else None
        cid = request.correlation_id
        for index, item in enumerate(request.software):
            if index < len(results):
                continue
            if not plan.should_try(request, sum(1 for r in results if r)):
                break
            self._journal.update(entry, current=index, results=results)
            self._reporter.report(plan.removing(cid, item))
            try:
                try:
                    self._manager.get(ContainerId(item.name))
                except NotFound:
                    if current == index:
                        # The last run removed it and was stopped before it said so.
                        results.append(None)
                        self._reporter.report(plan.removed(cid, item))
                        continue
                    raise
                self._manager.remove(ContainerId(item.name), True)
            except NotFound:
                results.append(plan.missing_container(item.name))
                continue
            except OcirtError as exc:
                results.append(exc.message)
                continue
            self._reporter.uninstalled(item.name)
            results.append(None)
            self._reporter.report(plan.removed(cid, item))
        self._journal.update(entry, current=None, results=results)
        for report in plan.remove_outcome(request, results):
            self._reporter.report(report)
