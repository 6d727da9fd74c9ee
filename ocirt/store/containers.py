"""The on-disk container store: one directory per container under `<home>/containers`.
Does I/O (files only).

Layout of `<home>/containers/<id>/` (Kanto's, so a device moving from Kanto keeps its
definitions; docs/kanto-compatibility.md §3, §5):

- `config.json`: the container in Kanto's persisted snake_case format; its presence is
  what makes the directory a container. Always replaced atomically.
- `bundle/`: the runc bundle (`config.json` runtime spec, `rootfs/`).
- `monitor/`: the per-container monitor's state dir (exit record, pid file).
- `hosts`, `resolv.conf`, `hostname`: the network files bind-mounted into /etc.
- `json.log*`: the logs, unless the log config names a `rootDir` (then
  `<rootDir>/<id>/json.log`).

A crash at any point leaves something `load_all` can read: a directory without
`config.json` whose container never ran is a half-created container (garbage); temp
files and trash directories left by `ocirt.atomic` are deleted. A `config.json` that
does not parse, or one that is missing from a container that ran (a bad flash page, a
hand's mistake: no crash of ocirt's makes either), is damage: reported, never deleted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocirt.atomic import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    TEMP_PREFIX,
    TRASH_PREFIX,
    Durability,
    fsync_dir,
    make_dir_durable,
    make_private,
    make_private_dir,
    purge_leftovers,
    remove_tree,
    write_atomic,
)
from ocirt.config.kanto import parse_persisted, to_persisted
from ocirt.config.model import ContainerDefinition, ContainerId
from ocirt.errors import NotFound, OcirtError, ValidationError
from ocirt.store.record import (
    RUNTIME_KEYS,
    RuntimeRecord,
    runtime_from_persisted,
    runtime_to_persisted,
)

CONFIG_FILE = "config.json"
LOG_FILE = "json.log"


@dataclass(frozen=True, slots=True)
class ContainerPaths:
    root: Path
    config: Path
    bundle: Path
    spec: Path
    rootfs: Path
    monitor: Path
    log: Path

    @property
    def log_dir(self) -> Path:
        return self.log.parent


@dataclass(frozen=True, slots=True)
class StoredContainer:
    """One persisted container: definition, runtime record, and members kept verbatim."""

    definition: ContainerDefinition
    runtime: RuntimeRecord
    # Persisted members ocirt does not model (network_settings, Kanto extras): kept so a
    # rewrite loses nothing.
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A damaged container directory: its `config.json` is missing or unreadable."""

    id: str
    reason: str


@dataclass(frozen=True, slots=True)
class LoadResult:
    containers: tuple[StoredContainer, ...]
    # Directories without config.json whose container never ran: its creation never
    # finished.
    half_created: tuple[str, ...]
    # config.json files that do not parse, or are missing from a container that ran (not
    # a crash artefact: writes are atomic and `remove` renames the directory away).
    unreadable: tuple[Unreadable, ...]


def _has_run(directory: Path) -> bool:
    """Whether a container directory without config.json held a container that ran:
    only a start writes the runtime spec and the monitor its files and the log, and a
    start needs a saved config.json."""
    if (directory / "bundle" / CONFIG_FILE).exists() or (directory / LOG_FILE).exists():
        return True
    try:
        with os.scandir(directory / "monitor") as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def encode(stored: StoredContainer) -> bytes:
    document: dict[str, Any] = to_persisted(stored.definition, stored.extras)
    document.update(runtime_to_persisted(stored.runtime))
    # Compact, as Kanto's json.Marshal writes it: with an indent, json falls back to its
    # pure-Python encoder, which cost more than the write itself on every state change.
    return json.dumps(document, separators=(",", ":")).encode() + b"\n"


def decode(data: bytes) -> StoredContainer:
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"invalid persisted container: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValidationError("invalid persisted container: not a JSON object")
    parsed = parse_persisted(raw)
    runtime = runtime_from_persisted(raw)
    extras = {k: v for k, v in parsed.extras.items() if k not in RUNTIME_KEYS}
    return StoredContainer(parsed.definition, runtime, extras)


class ContainerStore:
    """Containers persisted under `<home_dir>/containers`. Not thread-safe by itself: the
    manager serialises writes per container."""

    def __init__(self, home_dir: Path) -> None:
        self.home_dir = Path(home_dir)
        self.containers_dir = self.home_dir / "containers"

    def paths(self, container_id: str, log_root_dir: str = "") -> ContainerPaths:
        root = self.containers_dir / container_id
        bundle = root / "bundle"
        log_dir = Path(log_root_dir) / container_id if log_root_dir else root
        return ContainerPaths(
            root=root,
            config=root / CONFIG_FILE,
            bundle=bundle,
            spec=bundle / CONFIG_FILE,
            rootfs=bundle / "rootfs",
            monitor=root / "monitor",
            log=log_dir / LOG_FILE,
        )

    def make_private(self) -> None:
        """The home and containers dirs are root's alone (each container's own entries
        are taken back by `load_all`): what an older install left open is closed."""
        make_private_dir(self.home_dir)
        make_private_dir(self.containers_dir)

    def prepare_dirs(self, paths: ContainerPaths, *, durable: bool = True) -> None:
        """Create the container's directories (before its config.json exists).

        Only the entries outside the container's own directory are fsynced here: those
        inside it (bundle/, monitor/, the log) become durable with the directory fsync of
        the first full `save`, which is what makes the container exist at all; a power cut
        before then leaves a half-created directory, which is garbage anyway.

        Not `durable`: nothing is fsynced now; `settle` does it later (a create answered
        only after its start: beside the launch, or with the next `save(settle=True)`).
        """
        make_dir_durable(self.containers_dir, PRIVATE_DIR)
        if durable:
            make_dir_durable(paths.root, PRIVATE_DIR)
        else:
            paths.root.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        for directory in (paths.bundle, paths.monitor):
            directory.mkdir(exist_ok=True)
        if paths.log_dir != paths.root:
            if durable:
                make_dir_durable(paths.log_dir, PRIVATE_DIR)
            else:
                paths.log_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)

    def save(
        self,
        stored: StoredContainer,
        durability: Durability = Durability.FULL,
        *,
        settle: bool = False,
    ) -> None:
        """Replace the container's record; FULL unless the caller can do with less (see
        `ocirt.atomic`: every level leaves a whole record, old or new). `settle`: the
        directories `prepare_dirs(durable=False)` made are fsynced too, the record's own
        among them, so the container is on disk as a whole when this returns."""
        definition = stored.definition
        paths = self.paths(definition.id, definition.config.log.root_dir)
        make_dir_durable(paths.root, PRIVATE_DIR)
        # Owner only: a definition holds secrets (env, decryption key paths).
        content = Durability.CONTENT if settle else durability
        write_atomic(paths.config, encode(stored), PRIVATE_FILE, durability=content)
        if settle:
            self.settle(paths)  # the record's directory first: FULL, and the rest

    def settle(self, paths: ContainerPaths) -> None:
        """fsync what `prepare_dirs(durable=False)` and a `save` made without their
        directories' fsync: afterwards the container is on disk as a whole."""
        fsync_dir(paths.root)
        fsync_dir(self.containers_dir)
        if paths.log_dir != paths.root:
            fsync_dir(paths.log_dir)
            fsync_dir(paths.log_dir.parent)

    def load(self, container_id: str) -> StoredContainer:
        try:
            data = self.paths(container_id).config.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no such container with id = {container_id} exists") from exc
        return decode(data)

    def load_all(self) -> LoadResult:
        """Read every container; delete temp and trash leftovers of earlier crashes; make
        the home, the containers and their records root's alone (`make_private`)."""
        containers: list[StoredContainer] = []
        half: list[str] = []
        unreadable: list[Unreadable] = []
        self.make_private()
        purge_leftovers(self.containers_dir)
        for entry in sorted(self.containers_dir.iterdir()):
            if not entry.is_dir() or entry.name.startswith((TEMP_PREFIX, TRASH_PREFIX)):
                continue
            purge_leftovers(entry)
            make_private(entry, PRIVATE_DIR)
            for secret in (entry / CONFIG_FILE, entry / "bundle" / CONFIG_FILE):
                make_private(secret, PRIVATE_FILE)
            config = entry / CONFIG_FILE
            if not config.exists() and not config.is_symlink():
                if _has_run(entry):
                    unreadable.append(Unreadable(entry.name, f"{CONFIG_FILE} is missing"))
                else:
                    half.append(entry.name)
                continue
            try:
                stored = decode(config.read_bytes())
            except (OSError, OcirtError) as exc:
                unreadable.append(Unreadable(entry.name, str(exc)))
                continue
            if stored.definition.id != entry.name:
                unreadable.append(
                    Unreadable(entry.name, f"holds container {stored.definition.id!r}")
                )
                continue
            containers.append(stored)
        return LoadResult(tuple(containers), tuple(half), tuple(unreadable))

    def remove(self, container_id: str, log_root_dir: str = "") -> None:
        """Delete the container's directory (and its log dir when outside it).

        The log dir outside goes first, then the directory is renamed away at once
        (`remove_tree`): a crash half-way leaves the whole container (its record says
        DEAD, so recovery removes it again) or a trash entry, never a directory without
        its config.json, which would be taken for damage. Needs no free space.
        """
        paths = self.paths(container_id, log_root_dir)
        if log_root_dir:
            remove_tree(paths.log_dir)
        remove_tree(paths.root)

    def remove_half_created(self, container_id: str) -> None:
        remove_tree(self.containers_dir / ContainerId(container_id))
