"""Kanto deployment descriptors: containers declared as files (docs/kanto-features-notes.md §2.4).
Does I/O (reads the descriptor directory, the marker, drives the manager).

At daemon start, in a thread of its own (Kanto deploys asynchronously too), every `*.json`
under `deployment.ctr_dir` (walked recursively; Kanto's snake_case container format, the
one `kanto-cm create -f` reads) is read, and `plan` decides per descriptor:

- mode `init`: everything is created and started, but only when the marker directory
  `<home_dir>/deployment` is absent and no container exists; the marker is then made;
- mode `update`, matched by name: an absent container is created and started; an
  identical one is started or unpaused if it is not running; a change of restart policy
  or resources only is applied live (same id); any other change is a recreate: the new
  container is created (as `<name>.new`) while the old one runs, then the old one is
  stopped, the two swap names, the new one is started and must pass the activation gate
  (`ocirt.health.gate`: it keeps running, and turns healthy if its image has a health
  check); then the old one is removed. If the start or the gate fails, the new container
  is removed and the old one gets its name back and is started again (rollback).

Nothing is removed for a descriptor that disappeared. A descriptor's `container_id` is
the new container's id when it is free (a recreate's replacement needs another id while
the old container holds it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from ocirt.config.ditto import ContainerUpdate
from ocirt.config.kanto import parse_persisted_json
from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.daemon.config import DeploymentMode, DeploymentSettings
from ocirt.errors import InvalidArgument, OcirtError
from ocirt.health.gate import ActivationGate, Interrupted
from ocirt.manager.types import ContainerView, Status, StopOptions

if TYPE_CHECKING:
    from ocirt.things.ports import ContainerManager

log = logging.getLogger(__name__)

# Kanto's marker: a directory under deployment.home_dir.
MARKER = "deployment"
MAX_DESCRIPTOR = 1024 * 1024
NEW_SUFFIX = ".new"
OLD_SUFFIX = ".old"


# ---- descriptors ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Descriptor:
    image_ref: str
    config: ContainerConfig
    name: str | None
    container_id: str | None = None
    source: str = ""  # the file, for the log


def read_descriptor(text: bytes | str, source: str = "") -> Descriptor:
    """One descriptor, defaulted and validated; raises ValidationError.

    A descriptor without a container_name gets the manager's defaults (name = id), so
    the id-derived defaults the parser filled for a stand-in id are taken out again.
    """
    stand_in = f"descriptor-{uuid.uuid4().hex}"
    definition = parse_persisted_json(text, default_id=stand_in).definition
    config = definition.config
    container_id = definition.id if definition.id != stand_in else None
    if definition.name != stand_in:
        return Descriptor(definition.image_ref, config, definition.name, container_id, source)
    if config.host_name == f"{stand_in}-host":
        config = replace(config, host_name="")
    if config.domain_name == f"{stand_in}-domain":
        config = replace(config, domain_name="")
    return Descriptor(definition.image_ref, config, None, container_id, source)


def descriptor_request(text: bytes | str) -> tuple[str, ContainerConfig, str | None]:
    """(image_ref, config, name) of one descriptor; raises ValidationError."""
    descriptor = read_descriptor(text)
    return descriptor.image_ref, descriptor.config, descriptor.name


def scan(directory: Path) -> list[Descriptor]:
    """Every readable, valid `*.json` under `directory`, recursively, in path order.

    A missing directory holds nothing; a path that is not a directory is an
    InvalidArgument; unreadable or invalid files are logged and skipped.
    """
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise InvalidArgument(f"the deployment directory {directory} is not a directory")
    paths: list[Path] = []

    def unreadable(exc: OSError) -> None:
        log.error("deployment: cannot read %s: %s", exc.filename, exc.strerror)

    for root, dirs, files in os.walk(directory, onerror=unreadable):
        dirs.sort()
        paths.extend(Path(root) / f for f in files if f.endswith(".json"))
    descriptors = []
    for path in sorted(paths):
        source = str(path.relative_to(directory))
        try:
            with path.open("rb") as handle:
                text = handle.read(MAX_DESCRIPTOR + 1)
        except OSError as exc:
            log.error("deployment %s: cannot read it: %s", source, exc.strerror or exc)
            continue
        if len(text) > MAX_DESCRIPTOR:
            log.error("deployment %s: larger than %d bytes; skipped", source, MAX_DESCRIPTOR)
            continue
        try:
            descriptors.append(read_descriptor(text, source))
        except OcirtError as exc:
            log.error("deployment %s: %s", source, exc.message)
    return descriptors


# ---- the plan (pure) --------------------------------------------------------------------


class Kind(Enum):
    CREATE = "create"  # absent: create and start
    CHECK = "check"  # identical: start or unpause if not running
    UPDATE = "update"  # restart policy or resources: applied live, then running
    RECREATE = "recreate"  # anything else: replace, with rollback


@dataclass(frozen=True, slots=True)
class Action:
    kind: Kind
    descriptor: Descriptor
    current: ContainerView | None = None


def plan(
    mode: DeploymentMode,
    descriptors: Sequence[Descriptor],
    current: Sequence[ContainerView],
    marker_exists: bool,
) -> list[Action]:
    """What to do for each descriptor. Refusals (a second descriptor of one name, an
    unnamed descriptor in update mode) are logged and get no action."""
    if mode is DeploymentMode.INIT:
        if marker_exists or current:
            return []
        return [Action(Kind.CREATE, d) for d in _unique(descriptors)]
    by_name = {view.name: view for view in current}
    actions = []
    for descriptor in _unique(descriptors):
        if descriptor.name is None:
            # Matching is by name: without one, every start would add a container.
            log.error(
                "deployment %s: it has neither container_name nor container_id, which "
                "update mode matches containers by; skipped",
                descriptor.source,
            )
            continue
        view = by_name.get(descriptor.name)
        if view is None:
            actions.append(Action(Kind.CREATE, descriptor))
        else:
            actions.append(Action(compare(view, descriptor), descriptor, view))
    return actions


def compare(view: ContainerView, descriptor: Descriptor) -> Kind:
    """Kanto's comparison (the update agent's: `util/containers_compare.go`)."""
    from ocirt.updateagent.desired import DesiredContainer
    from ocirt.updateagent.identify import ActionType, determine

    desired = DesiredContainer(view.name, "", descriptor.image_ref, descriptor.config)
    kind = determine(view.config, view.image_ref, desired)
    if kind is ActionType.UPDATE:
        return Kind.UPDATE
    if kind is ActionType.CHECK:
        return Kind.CHECK
    return Kind.RECREATE


def _unique(descriptors: Sequence[Descriptor]) -> list[Descriptor]:
    seen: dict[str, str] = {}
    kept = []
    for descriptor in descriptors:
        if descriptor.name is not None and descriptor.name in seen:
            log.error(
                "deployment %s: container %s is already declared by %s; skipped",
                descriptor.source,
                descriptor.name,
                seen[descriptor.name],
            )
            continue
        if descriptor.name is not None:
            seen[descriptor.name] = descriptor.source
        kept.append(descriptor)
    return kept


# ---- carrying it out ----------------------------------------------------------------------


class Deployment:
    """Reads the descriptors and carries the plan out; `start` runs it in a thread."""

    def __init__(
        self,
        manager: ContainerManager,
        settings: DeploymentSettings,
        home_dir: Path,
        gate: ActivationGate | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        self._manager = manager
        self._settings = settings
        self._marker = Path(home_dir) / MARKER
        self._gate = gate if gate is not None else ActivationGate(manager, monitor=0.0)
        self._stop = StopOptions("SIGTERM", stop_timeout, True)
        self._thread: threading.Thread | None = None
        self.done = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="ocirt-deployment", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Interrupt a gate under way (the recreate is rolled back) and wait for the end."""
        self._gate.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> list[str]:
        """Apply the descriptors; returns the ids of the containers created and kept.
        Never raises: what goes wrong is logged."""
        try:
            return self._run()
        except Exception:
            log.exception("deployment failed")
            return []
        finally:
            self.done.set()

    def _run(self) -> list[str]:
        mode = self._settings.mode
        marker_exists = self._marker.is_dir()
        try:
            descriptors = scan(Path(self._settings.ctr_dir))
        except OcirtError as exc:
            log.error("deployment: %s", exc.message)
            return []
        actions = plan(mode, descriptors, self._manager.list(), marker_exists)
        if mode is DeploymentMode.INIT and not marker_exists:
            if not actions and descriptors:
                log.info("deployment: containers exist already; init mode deploys nothing")
            try:
                self._marker.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                log.warning("deployment: cannot make the marker %s: %s", self._marker, exc)
        created = []
        for action in actions:
            try:
                cid = self._carry_out(action)
            except Interrupted:
                log.warning("deployment: interrupted by the daemon's stop")
                break
            except OcirtError as exc:
                log.error("deployment %s: %s", action.descriptor.source, exc.message)
                continue
            if cid is not None:
                created.append(cid)
        log.info("deployment finished: %d descriptor(s), %d action(s)", len(descriptors),
                 len(actions))  # fmt: skip
        return created

    def _carry_out(self, action: Action) -> str | None:
        descriptor = action.descriptor
        if action.kind is Kind.CREATE:
            return self._create(descriptor)
        current = action.current
        assert current is not None
        if action.kind is Kind.RECREATE:
            return self._recreate(descriptor, current)
        if action.kind is Kind.UPDATE:
            update = ContainerUpdate(
                restart_policy=descriptor.config.restart_policy,
                resources=descriptor.config.resources,
            )
            self._manager.update(current.id, update)
            log.info("deployment %s: updated %s (%s) in place", descriptor.source,
                     current.name, current.id)  # fmt: skip
        self._ensure_running(descriptor, current.id)
        return None

    def _create(self, descriptor: Descriptor) -> str:
        view = self._manager.create(
            descriptor.image_ref,
            descriptor.config,
            descriptor.name,
            container_id=descriptor.container_id,
        )
        log.info("deployment %s: created %s (%s)", descriptor.source, view.name, view.id)
        try:
            self._manager.start(view.id)
        except OcirtError as exc:
            log.error("deployment %s: %s did not start: %s", descriptor.source, view.name,
                      exc.message)  # fmt: skip
        return str(view.id)

    def _ensure_running(self, descriptor: Descriptor, cid: ContainerId) -> None:
        status = self._manager.get(cid).state.status
        if status is Status.RUNNING:
            return
        if status is Status.PAUSED:
            self._manager.resume(cid)
            log.info("deployment %s: resumed %s", descriptor.source, cid)
        else:
            self._manager.start(cid)
            log.info("deployment %s: started %s", descriptor.source, cid)

    def _recreate(self, descriptor: Descriptor, old: ContainerView) -> str | None:
        """Create the new one first, stop the old, swap names, start the new and gate it;
        roll back on a failure. Returns the new id when it stays."""
        name = old.name
        source = descriptor.source
        requested = descriptor.container_id
        if requested == old.id:
            requested = None  # the old container holds it until it is removed
        new = self._manager.create(
            descriptor.image_ref, descriptor.config, name + NEW_SUFFIX, container_id=requested
        )
        log.info("deployment %s: %s (%s) changed; created its replacement %s", source, name,
                 old.id, new.id)  # fmt: skip
        try:
            if self._manager.get(old.id).state.status.is_active:
                self._manager.stop(old.id, self._stop)
            self._manager.rename(old.id, name + OLD_SUFFIX)
            self._manager.rename(new.id, name)
            self._manager.start(new.id)
            self._gate.verify(new.id)
        except (OcirtError, Interrupted) as exc:
            reason = exc.message if isinstance(exc, OcirtError) else str(exc)
            notes = self._roll_back(old.id, new.id, name)
            log.error("deployment %s: the new %s (%s) failed: %s; rolled back: %s", source,
                      name, new.id, reason, notes)  # fmt: skip
            if isinstance(exc, Interrupted):
                raise
            return None
        try:
            self._manager.remove(old.id, True)
        except OcirtError as exc:
            log.warning("deployment %s: cannot remove the old %s (%s): %s", source, name,
                        old.id, exc.message)  # fmt: skip
        log.info("deployment %s: replaced %s (%s) with %s", source, name, old.id, new.id)
        return str(new.id)

    def _roll_back(self, old_id: ContainerId, new_id: ContainerId, name: str) -> str:
        """Remove the new container, give the old one its name back and start it."""
        done = []
        try:
            self._manager.remove(new_id, True)
            done.append(f"removed {new_id}")
        except OcirtError as exc:
            done.append(f"cannot remove {new_id}: {exc.message}")
            # Its name must go, or the old one cannot have it back.
            with contextlib.suppress(OcirtError):
                self._manager.rename(new_id, f"{name}.failed-{new_id}")
        try:
            self._manager.rename(old_id, name)
            status = self._manager.get(old_id).state.status
            if status is Status.PAUSED:
                self._manager.resume(old_id)
            elif status is not Status.RUNNING:
                self._manager.start(old_id)
            done.append(f"{name} ({old_id}) runs again")
        except OcirtError as exc:
            done.append(f"cannot restart {name} ({old_id}): {exc.message}")
        return ", ".join(done)


def deploy(
    manager: ContainerManager,
    settings: DeploymentSettings,
    home_dir: Path,
    gate: ActivationGate | None = None,
    stop_timeout: float = 30.0,
) -> list[str]:
    """Apply the descriptors now (in the caller's thread); the ids of containers created."""
    return Deployment(manager, settings, home_dir, gate, stop_timeout).run()
