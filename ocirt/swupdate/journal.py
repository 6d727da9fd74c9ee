"""Accepted operations on disk, so that a daemon restart finishes them. Does I/O (files).

Each operation the feature answered 204 is one file `op-<seq>.json` in the journal
directory, written (fsynced) before the answer, rewritten at every step that matters
for a restart (which module, which phase, which containers it created or set aside),
and deleted when the operation has reported its end. A partial artifact download sits
next to it as `op-<seq>-<module>-<artifact>.part`.

Kanto keeps none of this: an install that a restart interrupts stays at its last state
(INSTALLING, say) on the twin for good.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocirt.atomic import Durability, make_dir_durable, purge_leftovers, write_atomic

log = logging.getLogger(__name__)

_NAME = re.compile(r"^op-(\d{8})\.json$")
# A journal entry is a request (bounded by the MQTT payload limit) plus a little progress.
MAX_ENTRY = 4 * 1024 * 1024


@dataclass
class Entry:
    seq: int
    kind: str  # "install" or "remove"
    value: object  # the request value as received
    progress: dict[str, Any] = field(default_factory=dict)


class Journal:
    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        self._next = 0

    def _path(self, seq: int) -> Path:
        return self._dir / f"op-{seq:08d}.json"

    def partial(self, entry: Entry, module: int, artifact: int) -> Path:
        return self._dir / f"op-{entry.seq:08d}-{module}-{artifact}.part"

    def _write(self, entry: Entry) -> None:
        data = {"kind": entry.kind, "value": entry.value, "progress": entry.progress}
        write_atomic(self._path(entry.seq), json.dumps(data), 0o600, durability=Durability.FULL)

    def add(self, kind: str, value: object) -> Entry:
        make_dir_durable(self._dir)
        if not self._next:
            self._next = max((e.seq for e in self._scan()), default=0) + 1
        entry = Entry(self._next, kind, value)
        self._next += 1
        self._write(entry)
        return entry

    def update(self, entry: Entry, **progress: Any) -> None:
        entry.progress.update(progress)
        self._write(entry)

    def done(self, entry: Entry) -> None:
        for path in self._dir.glob(f"op-{entry.seq:08d}*"):
            path.unlink(missing_ok=True)

    def pending(self) -> list[Entry]:
        """The operations a previous run left unfinished, oldest first."""
        purge_leftovers(self._dir)
        entries = self._scan()
        self._next = max((e.seq for e in entries), default=self._next - 1) + 1
        return entries

    def _scan(self) -> list[Entry]:
        if not self._dir.is_dir():
            return []
        entries = []
        for path in sorted(self._dir.iterdir()):
            match = _NAME.match(path.name)
            if match is None:
                continue
            try:
                with path.open("rb") as handle:
                    raw = handle.read(MAX_ENTRY + 1)
                data = json.loads(raw) if len(raw) <= MAX_ENTRY else None
            except (OSError, ValueError) as exc:
                log.warning("ignored an unreadable journal entry %s: %s", path, exc)
                continue
            if (
                not isinstance(data, dict)
                or data.get("kind") not in ("install", "remove")
                or not isinstance(data.get("progress"), dict)
            ):
                log.warning("ignored a malformed journal entry %s", path)
                continue
            entries.append(
                Entry(int(match.group(1)), data["kind"], data["value"], data["progress"])
            )
        return entries
