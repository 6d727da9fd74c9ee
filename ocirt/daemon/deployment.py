"""Kanto deployment descriptors: containers declared as files (kanto-reference §3, §10).
Does I/O (reads the descriptor directory, one marker file).

At daemon start every `*.json` in `deployment.ctr_dir` (Kanto's snake_case container
format, the one `kanto-cm create -f` reads) is applied: a container whose name is new
is created and started; one that exists with a different image or config is replaced
(removed, created, started); an identical one is left alone, its restart policy
governs it. Nothing is removed for a descriptor that disappeared. Mode `init` applies
the directory only at the daemon's first start (a marker file in the home dir).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ocirt.atomic import write_atomic
from ocirt.config.kanto import parse_persisted_json
from ocirt.config.model import ContainerConfig
from ocirt.daemon.config import DeploymentMode, DeploymentSettings
from ocirt.errors import OcirtError

if TYPE_CHECKING:
    from ocirt.things.ports import ContainerManager

log = logging.getLogger(__name__)

INIT_MARKER = "deployment.init"
MAX_DESCRIPTOR = 1024 * 1024


def descriptor_request(text: bytes | str) -> tuple[str, ContainerConfig, str | None]:
    """(image_ref, config, name) of one descriptor; raises ValidationError.

    A descriptor without a container_name gets the manager's defaults (name = id), so
    the id-derived defaults the parser filled for a stand-in id are taken out again.
    """
    stand_in = f"descriptor-{uuid.uuid4().hex}"
    persisted = parse_persisted_json(text, default_id=stand_in)
    definition = persisted.definition
    config = definition.config
    if definition.name != stand_in:
        return definition.image_ref, config, definition.name
    if config.host_name == f"{stand_in}-host":
        config = replace(config, host_name="")
    if config.domain_name == f"{stand_in}-domain":
        config = replace(config, domain_name="")
    return definition.image_ref, config, None


def deploy(manager: ContainerManager, settings: DeploymentSettings, home_dir: Path) -> list[str]:
    """Apply the descriptors; returns the ids of containers created. Never raises."""
    directory = Path(settings.ctr_dir)
    marker = Path(home_dir) / INIT_MARKER
    if settings.mode is DeploymentMode.INIT and marker.exists():
        return []
    created: list[str] = []
    try:
        files = sorted(p for p in directory.glob("*.json") if p.is_file())
    except OSError as exc:
        log.warning("cannot read deployment directory %s: %s", directory, exc)
        files = []
    for path in files:
        try:
            cid = _apply(manager, path)
        except OcirtError as exc:
            log.error("deployment %s: %s", path.name, exc.message)
            continue
        except OSError as exc:
            log.error("deployment %s: %s", path.name, exc)
            continue
        if cid is not None:
            created.append(cid)
    if settings.mode is DeploymentMode.INIT:
        try:
            Path(home_dir).mkdir(parents=True, exist_ok=True)
            write_atomic(marker, b"")
        except OSError as exc:
            log.warning("cannot write %s: %s", marker, exc)
    return created


def _apply(manager: ContainerManager, path: Path) -> str | None:
    with path.open("rb") as handle:
        text = handle.read(MAX_DESCRIPTOR + 1)
    if len(text) > MAX_DESCRIPTOR:
        log.error("deployment %s: larger than %d bytes; skipped", path.name, MAX_DESCRIPTOR)
        return None
    image_ref, config, name = descriptor_request(text)
    existing = [v for v in manager.list() if name is not None and v.name == name]
    if existing:
        current = existing[0]
        wanted = replace(
            config,
            host_name=config.host_name or current.config.host_name,
            domain_name=config.domain_name or current.config.domain_name,
        )
        if current.image_ref == image_ref and current.config == wanted:
            return None
        log.info("deployment %s: %s changed; replacing it", path.name, name)
        manager.remove(current.id, True)
    view = manager.create(image_ref, config, name)
    log.info("deployment %s: created %s (%s)", path.name, view.name, view.id)
    try:
        manager.start(view.id)
    except OcirtError as exc:
        log.error("deployment %s: %s did not start: %s", path.name, view.name, exc.message)
    return str(view.id)
