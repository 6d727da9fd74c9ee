"""Polling and loopback ports, one copy for every suite."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_WAIT = 30.0


def wait_for(
    what: str, predicate: Callable[[], T], timeout: float = DEFAULT_WAIT, interval: float = 0.02
) -> T:
    """Poll until `predicate()` is truthy and return that value; the timeout only bounds a
    hang, it asserts no speed."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# For what waits on runc and the monitors on a loaded machine.
LONG_WAIT = 60.0
