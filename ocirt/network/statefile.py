"""Atomic JSON state files of the network layer. Does I/O.

A file is replaced whole: temp file, fsync, rename, fsync of the directory, so a crash
leaves either the old or the new content, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ocirt.errors import NetworkError


def write_json(path: Path, data: Any) -> None:
    payload = json.dumps(data, indent=1, sort_keys=True).encode()
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
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
