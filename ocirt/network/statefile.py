"""Atomic JSON state files of the network layer. Does I/O.

A file is replaced whole: temp file, fsync, rename, so a crash leaves either the old or
the new content, never a torn one. The directory is not fsynced after the rename: a
`kill -9` keeps the page cache, so a restarted daemon reads the new file; a power cut
may bring back the previous version, but it also removed every netns, veth, rule and
port reservation that either version describes, and the `reconcile` at start releases
what belongs to no container. The fsync of the data stays by default, so that what is
read after a power cut is whole and a malformed file still means real damage.

`synced=False` (the endpoint records): no fsync at all. After a power cut every record
in the file is stale (no netns, veth or rule survives one), and a torn file is rebuilt
from what is in use like any damaged one (`BridgeNetwork._rebuild`); the fsync would
sit on the way of every container start for nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ocirt.atomic import Durability, write_atomic
from ocirt.errors import NetworkError


def write_json(path: Path, data: Any, *, synced: bool = True) -> None:
    payload = json.dumps(data, indent=1, sort_keys=True).encode()
    durability = Durability.CONTENT if synced else Durability.CRASH
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, payload, 0o600, durability=durability)
    except OSError as exc:
        raise NetworkError(f"cannot write network state {path}: {exc}") from exc


def read_json(path: Path) -> Any:
    """The file's content, or None when it does not exist."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise NetworkError(f"cannot read network state {path}: {exc}") from exc
