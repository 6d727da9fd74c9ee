"""The daemon's log file, rotated by size (Kanto's `log_file_size` and `log_file_count`).
Does I/O.

`logging.handlers.RotatingFileHandler` would do the same, but its module imports pickle
for its socket handlers: about 0.3 MB of the daemon's memory for good (#17). This is the
part the daemon uses: when the next record would take the file over `max_bytes`, it
becomes `<file>.1`, `<file>.1` becomes `<file>.2` and so on up to `backups`, and the
oldest is dropped.
"""

from __future__ import annotations

import logging
import os


class RotatingLogFile(logging.FileHandler):
    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self.max_bytes = max_bytes
        self.backups = backups

    def emit(self, record: logging.LogRecord) -> None:
        # Called under the handler's lock (`Handler.handle`): one rotation at a time.
        try:
            if self._full_after(record):
                self._rotate()
        except Exception:
            self.handleError(record)
            return
        super().emit(record)

    def _full_after(self, record: logging.LogRecord) -> bool:
        if self.max_bytes <= 0 or self.backups <= 0:
            return False
        if self.stream is None:  # closed after an earlier failure: reopened by emit
            self.stream = self._open()
        size = self.stream.tell()
        text = self.format(record) + self.terminator
        # A record larger than the limit still goes to a file: an empty one.
        return size > 0 and size + len(text.encode("utf-8", "replace")) > self.max_bytes

    def _rotate(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        base = self.baseFilename
        for index in range(self.backups - 1, 0, -1):
            older = f"{base}.{index}"
            if os.path.exists(older):
                os.replace(older, f"{base}.{index + 1}")
        if os.path.exists(base):
            os.replace(base, f"{base}.1")
        self.stream = self._open()
