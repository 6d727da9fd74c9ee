"""Reading a container's json-file log and its rotated files. Does I/O (files only).

Files are read oldest first: json.log.N ... json.log.1, then json.log (Docker's
logfile.go order). All of them are opened before any is read, newest first, and an
inode seen twice is read once, so a rotation during the read neither loses nor repeats
a file. `tail` scans the newest files backwards; `since` drops entries until the first
one at or after it; `follow` polls the current file, finishes it when json.log has
been renamed away, reads any files rotated in between, and reopens json.log at offset 0.
A line cut short by a crash (no trailing newline in the file) is skipped.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ocirt.errors import NotFound
from ocirt.logs.jsonline import Chunk, EntryAssembler, LogEntry, decode_line

_BLOCK = 65536
_READ = 1 << 20


def rotated_files(path: Path) -> list[Path]:
    """json.log.N ... json.log.1 that exist, oldest first."""
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)")
    numbered: list[tuple[int, Path]] = []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return []
    for name in names:
        match = pattern.fullmatch(name)
        if match:
            numbered.append((int(match.group(1)), path.parent / name))
    return [p for _, p in sorted(numbered, reverse=True)]


def _open_all(path: Path) -> list[BinaryIO]:
    """Open json.log and its rotated files, newest first; returned oldest first."""
    opened: list[BinaryIO] = []
    seen: set[tuple[int, int]] = set()
    for candidate in [path, *reversed(rotated_files(path))]:
        try:
            f = open(candidate, "rb")  # noqa: SIM115 - closed by the caller
        except FileNotFoundError:
            continue
        st = os.fstat(f.fileno())
        if (st.st_dev, st.st_ino) in seen:
            f.close()
            continue
        seen.add((st.st_dev, st.st_ino))
        opened.append(f)
    opened.reverse()
    return opened


def _chunks(lines: Iterable[bytes]) -> Iterator[Chunk]:
    for line in lines:
        chunk = decode_line(line)
        if chunk is not None:
            yield chunk


def _complete_lines(f: BinaryIO) -> Iterator[bytes]:
    """Whole lines from the current offset; a final line without newline is skipped."""
    for line in f:
        if line.endswith(b"\n"):
            yield line


def _reverse_lines(f: BinaryIO, end: int) -> Iterator[bytes]:
    """Complete lines of the first `end` bytes of a file, last first."""
    tail = b""
    pos = end
    first_block = True
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        f.seek(pos)
        block = f.read(step) + tail
        parts = block.split(b"\n")
        tail = parts[0]
        body = parts[1:]
        if first_block:
            # The text after the last newline is an unfinished line: skip it.
            body = body[:-1]
            first_block = False
        for line in reversed(body):
            yield line + b"\n"
    if tail and not first_block:
        yield tail + b"\n"


def _tail_chunks(files: list[tuple[BinaryIO, int]], count: int) -> list[Chunk]:
    """The chunks making up the last `count` entries of (file, size) pairs, in order."""
    picked: list[Chunk] = []
    complete_seen = 0
    for f, end in reversed(files):
        for line in _reverse_lines(f, end):
            chunk = decode_line(line)
            if chunk is None:
                continue
            if chunk.complete:
                if complete_seen == count:
                    picked.reverse()
                    return picked
                complete_seen += 1
            picked.append(chunk)
    picked.reverse()
    return picked


class _Since:
    """Docker's --since: drop entries until the first one at or after `since`."""

    def __init__(self, since: datetime | None) -> None:
        self._since = since

    def admit(self, entry: LogEntry) -> bool:
        if self._since is None:
            return True
        if entry.time < self._since:
            return False
        self._since = None
        return True


def _assemble(chunks: Iterable[Chunk], assembler: EntryAssembler) -> Iterator[LogEntry]:
    for chunk in chunks:
        entry = assembler.feed(chunk)
        if entry is not None:
            yield entry


def read_logs(
    path: Path,
    *,
    tail: int | None = None,
    since: datetime | None = None,
    follow: bool = False,
    stop: Callable[[], bool] | None = None,
    poll_interval: float = 0.2,
) -> Iterator[LogEntry]:
    """Entries of the log at `path` (json.log), oldest first.

    With follow=True the iterator keeps waiting for new lines, across rotations, until
    `stop()` returns True (e.g. the container's exit record exists); it then reads what
    is left and ends. `stop` is called once per poll. The caller may also just stop
    iterating.
    """
    if tail is not None and tail < 0:
        tail = None
    files = _open_all(path)
    if not files and not follow and not path.parent.is_dir():
        raise NotFound(f"no logs for {path.parent.name}")
    current = files.pop() if files and files[-1].name == str(path) else None
    follower = _Follower(path, current)
    try:
        if tail is not None:
            sized = [(f, f.seek(0, os.SEEK_END)) for f in files]
            start = 0
            if current is not None:
                end = current.seek(0, os.SEEK_END)
                sized.append((current, end))
                start = end - len(_unfinished_tail(current, end))
            initial: Iterable[Chunk] = _tail_chunks(sized, tail) if tail > 0 else []
            follower.seek(start)
        else:
            initial = _chunks(line for f in files for line in _complete_lines(f))
        assembler = EntryAssembler()
        window = _Since(since)
        yield from (e for e in _assemble(initial, assembler) if window.admit(e))
        while True:
            stopping = not follow or (stop is not None and stop())
            progressed = False
            for line in follower.pump():
                progressed = True
                chunk = decode_line(line)
                if chunk is None:
                    continue
                entry = assembler.feed(chunk)
                if entry is not None and window.admit(entry):
                    yield entry
            if stopping:
                yield from (e for e in assembler.flush() if window.admit(e))
                return
            if not progressed:
                time.sleep(poll_interval)
    finally:
        follower.close()
        for f in files:
            f.close()


def _unfinished_tail(f: BinaryIO, size: int) -> bytes:
    """The bytes after the last newline of the file (an entry still being written)."""
    pos = size
    tail = b""
    while pos > 0:
        step = min(_BLOCK, pos)
        pos -= step
        f.seek(pos)
        block = f.read(step)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return block[cut + 1 :] + tail
        tail = block + tail
    return tail


class _Follower:
    """Yields new complete lines of json.log as they are appended, across rotations."""

    def __init__(self, path: Path, current: BinaryIO | None) -> None:
        self._path = path
        self._file = current
        self._partial = b""

    def seek(self, offset: int) -> None:
        if self._file is not None:
            self._file.seek(offset)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _read_new(self) -> Iterator[bytes]:
        while self._file is not None:
            data = self._file.read(_READ)
            if not data:
                return
            data = self._partial + data
            cut = data.rfind(b"\n") + 1
            self._partial = data[cut:]
            for line in data[:cut].split(b"\n")[:-1]:
                yield line + b"\n"

    def _rotated_since(self, old: os.stat_result) -> list[Path]:
        """Files rotated after the one we were reading, oldest first."""
        files = rotated_files(self._path)
        for index, candidate in enumerate(files):
            try:
                st = os.stat(candidate)
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) == (old.st_dev, old.st_ino):
                return files[index + 1 :]
        # Our file was rotated out entirely: every rotated file left is newer.
        return files

    def pump(self) -> Iterator[bytes]:
        """All complete lines available now, including those in files rotated since."""
        while True:
            yield from self._read_new()
            try:
                now = os.stat(self._path)
            except FileNotFoundError:
                return
            if self._file is not None:
                old = os.fstat(self._file.fileno())
                if (now.st_dev, now.st_ino) == (old.st_dev, old.st_ino):
                    return
                # json.log is a new file: finish the old one, then the files in between.
                yield from self._read_new()
                self._partial = b""
                for missed in self._rotated_since(old):
                    try:
                        with open(missed, "rb") as f:
                            yield from _complete_lines(f)
                    except FileNotFoundError:
                        continue
                self.close()
            try:
                self._file = open(self._path, "rb")  # noqa: SIM115 - closed in close()
            except FileNotFoundError:
                return
