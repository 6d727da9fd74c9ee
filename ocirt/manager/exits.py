"""The manager's ear for container exits: a unix datagram socket the monitors notify.
Does I/O (one socket, one thread).

Each monitor sends `{"id":..,"exitCode":..}` when its container exits (best effort: a
notice sent while no manager listens is lost). The exit record the monitor writes is
what counts; a notice only says "look now". So the listener also ticks every
`sweep_interval` seconds, letting the manager look at every running container, which
catches a notice lost to a full socket buffer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

_log = logging.getLogger(__name__)

MAX_NOTICE = 4096


def parse_notice(data: bytes) -> str | None:
    """The container id of a notice; None for anything malformed (never raises)."""
    try:
        raw = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    container_id = raw.get("id")
    return container_id if isinstance(container_id, str) and container_id else None


class ExitListener:
    def __init__(
        self,
        path: Path,
        on_notice: Callable[[str], None],
        on_tick: Callable[[], None] | None = None,
        sweep_interval: float = 5.0,
    ) -> None:
        self.path = Path(path)
        self._on_notice = on_notice
        self._on_tick = on_tick
        self._interval = sweep_interval
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        # A socket file left by a manager that was killed blocks bind; nobody else owns
        # this path (it is under our exec root).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock.bind(str(self.path))
        sock.settimeout(self._interval)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, name="ocirt-exits", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            # Wake the thread out of recv: a zero-length datagram to ourselves.
            with contextlib.suppress(OSError):
                waker = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                with waker:
                    waker.sendto(b"", str(self.path))
        if self._thread is not None:
            self._thread.join(5.0)
        if sock is not None:
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data = self._sock.recv(MAX_NOTICE)
            except TimeoutError:
                if self._on_tick is not None:
                    self._call(self._on_tick)
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            container_id = parse_notice(data)
            if container_id is not None:
                self._call(self._on_notice, container_id)

    def _call(self, fn: Callable[..., None], *args: str) -> None:
        try:
            fn(*args)
        except Exception:
            _log.exception("exit notice handling failed")
