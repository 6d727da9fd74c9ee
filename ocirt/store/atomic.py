"""Crash-safe file writes and directory removal. Does I/O (files only).

A reader sees either the old content or the new one, never a mix, whatever moment a
`kill -9` or a power cut strikes: data goes to a temp file in the same directory, is
fsynced, renamed over the target, and the directory is fsynced so the rename itself is
durable. Temp files carry TEMP_PREFIX so a later start recognises and deletes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644, *, durable: bool = True) -> None:
    """Replace `path` with `data` atomically, and durably unless `durable` is False.

    Not durable still means atomic for a process crash (readers see old or new); only a
    power cut may lose it. For files rebuilt at every start (bundle spec, /etc files).
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def make_dir_durable(path: Path) -> None:
    """mkdir (parents too) and fsync the parent, so the new entry survives a power cut."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Remove a directory so that a crash leaves either all of it or a marked leftover.

    The directory is first renamed to a TRASH_PREFIX sibling (atomic), then deleted; a
    start that finds a trash directory finishes the deletion (`purge_leftovers`).
    """
    path = Path(path)
    if not path.exists():
        return
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
    os.rename(path, trash)
    fsync_dir(path.parent)
    shutil.rmtree(trash, ignore_errors=True)


def purge_leftovers(directory: Path) -> list[Path]:
    """Delete temp files and trash directories directly in `directory`; return them."""
    removed: list[Path] = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if entry.name.startswith(TRASH_PREFIX) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        elif entry.name.startswith(TEMP_PREFIX):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed
