"""Crash-safe file writes and directory removal. Does I/O (files only).

A reader sees either the old content or the new one, never a mix, whatever moment a
`kill -9` strikes: data goes to a temp file in the same directory and is renamed over the
target. How much of that survives a power cut is the caller's choice (`Durability`):

- FULL: the file is fsynced before the rename and the directory after it, so the new
  content is on disk when the call returns. For what cannot be rebuilt (a definition).
- CONTENT: the file is fsynced, the directory is not: after a power cut the reader finds
  the old content or the new one, both whole, and the rename may not have happened yet.
  One fsync fewer, for records that a power cut makes stale anyway.
- CRASH: no fsync at all: a power cut may leave the file empty or torn. For files that
  are rebuilt before every use, or whose readers accept damage.

Temp files carry TEMP_PREFIX so a later start recognises and deletes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from enum import Enum
from pathlib import Path

TEMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".trash-"


class Durability(Enum):
    """What of a write survives a power cut (module docstring)."""

    FULL = "full"
    CONTENT = "content"
    CRASH = "crash"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path,
    data: bytes | str,
    mode: int = 0o644,
    *,
    durability: Durability = Durability.FULL,
) -> None:
    """Replace `path` with `data` atomically; `durability` says what a power cut keeps."""
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
            if durability is not Durability.CRASH:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durability is Durability.FULL:
        fsync_dir(path.parent)


def make_dir_durable(path: Path, mode: int = 0o777) -> None:
    """mkdir (parents too; `path` itself with `mode`, less the umask) and fsync the
    parent, so the new entry survives a power cut.

    A directory that exists already costs no fsync: ocirt made it this way before.
    """
    path = Path(path)
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=mode)
    fsync_dir(path.parent)


# Owner-only modes of what holds secrets (a container's env, its decryption key paths).
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private(path: Path, mode: int) -> None:
    """Give `path` (never a symlink's target) this exact mode and, when another user owns
    it, to the current user: what an older install or another hand left readable to
    local users is taken back. Absent is not an error."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    if st.st_uid != os.geteuid() or st.st_gid != os.getegid():
        os.chown(path, os.geteuid(), os.getegid(), follow_symlinks=False)
    if st.st_mode & 0o7777 != mode:
        # Not a symlink (checked above); Linux has no lchmod.
        os.chmod(path, mode)


def make_private_dir(path: Path) -> None:
    """mkdir (parents too) and make `path` itself owner-only (`make_private`)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    make_private(path, PRIVATE_DIR)


def remove_tree(path: Path) -> None:
    """Remove a directory (or a file or symlink, never followed) so that a crash leaves
    either all of it or a marked leftover.

    The entry is first renamed to a TRASH_PREFIX sibling (atomic) and the parent fsynced,
    so a crash never leaves a half-removed tree under a live name (containerd bundle.go);
    then it is deleted. A start that finds a trash entry finishes the deletion
    (`purge_leftovers`). Absent, or removed by someone else first: nothing to do.
    """
    path = Path(path)
    trash = path.with_name(f"{TRASH_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    fsync_dir(path.parent)
    _delete(trash)


def _delete(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            entry.unlink()


def purge_leftovers(directory: Path) -> list[Path]:
    """Delete temp files and trash directories directly in `directory`; return them."""
    removed: list[Path] = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        if entry.name.startswith(TRASH_PREFIX):
            _delete(entry)
            removed.append(entry)
        elif entry.name.startswith(TEMP_PREFIX):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed
