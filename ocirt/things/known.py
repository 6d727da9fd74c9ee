"""The known-features file: which container features a thing has on the cloud side.
Does file I/O (one small JSON file per thing), nothing else.

Kanto keeps it (features_container_factory_persistence.go) so that a reconnect can
delete the features of containers removed while the device was offline. The file maps
each container id to its feature id, `{"<id>": "Container:<id>"}`; only the keys are read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from ocirt.atomic import Durability, write_atomic
from ocirt.manager.types import Event, EventKind
from ocirt.things.protocol import ThingId, container_feature_id

log = logging.getLogger(__name__)


def backup_path(home_dir: Path, thing: ThingId) -> Path:
    return home_dir / thing.backup_name


def load(home_dir: Path, thing: ThingId) -> set[str]:
    """The container ids last stored for `thing`; empty when there is no usable file."""
    path = backup_path(home_dir, thing)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as exc:
        log.warning("ignored an unreadable %s: %s", path, exc)
        return set()
    if not isinstance(data, dict):
        return set()
    return {str(key) for key in data}


def save(home_dir: Path, thing: ThingId, ids: Iterable[str]) -> None:
    """Store `ids` for `thing`; a failure is logged, never raised (the file is a hint)."""
    data = {cid: container_feature_id(cid) for cid in sorted(ids)}
    try:
        home_dir.mkdir(parents=True, exist_ok=True)
        # No fsync: it only lets a reconnect delete features of containers removed
        # meanwhile, and `load` reads a file a power cut damaged as empty (Kanto
        # does not sync it either).
        write_atomic(
            backup_path(home_dir, thing),
            json.dumps(data).encode(),
            mode=0o600,
            durability=Durability.CRASH,
        )
    except OSError as exc:
        log.warning("cannot save the known features: %s", exc)


def track(known: set[str], event: Event) -> bool:
    """Update `known` (in place) for a container created or removed; True when the
    event is one of those, so the caller saves the file."""
    if event.kind is EventKind.CREATED:
        known.add(event.container.id)
    elif event.kind is EventKind.REMOVED:
        known.discard(event.container.id)
    else:
        return False
    return True
