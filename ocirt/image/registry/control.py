"""Time limits and cancellation of one pull. Does I/O only to break blocking reads.

A pull ends with an error when the registry sends nothing for ``stall_timeout`` seconds
(PullStalled), when it has run for ``deadline`` seconds in all (PullDeadlineExceeded: a
registry that trickles 1 byte a second never stalls), or when it is cancelled
(PullCancelled, e.g. at SIGTERM). All three are RegistryUnavailable: what was received
stays as a partial blob, and the next pull resumes it with ``Range``.

Every socket read of the registry client is bounded by `read_timeout()` and followed by
`check()`; `cancel()` from another thread shuts the pull's sockets down, which wakes a
read blocked in the kernel at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from ocirt.errors import RegistryUnavailable

DEFAULT_STALL_TIMEOUT = 60.0
DEFAULT_PULL_DEADLINE = 30 * 60.0


class PullInterrupted(RegistryUnavailable):
    """A pull ended before its content did; the partial download stays for a resume."""


class PullStalled(PullInterrupted):
    pass


class PullDeadlineExceeded(PullInterrupted):
    pass


class PullCancelled(PullInterrupted):
    pass


class PullControl:
    """The limits of one pull, and its cancellation; shared by the threads of the pull."""

    def __init__(
        self,
        what: str,
        *,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        deadline: float | None = DEFAULT_PULL_DEADLINE,
    ) -> None:
        if stall_timeout <= 0 or (deadline is not None and deadline <= 0):
            raise ValueError("pull timeouts must be positive")
        self.what = what
        self.stall_timeout = stall_timeout
        self.deadline = deadline
        self._ends = None if deadline is None else time.monotonic() + deadline
        self._cancelled = threading.Event()
        self._reason = ""
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self, reason: str = "cancelled") -> None:
        """End the pull: the next check raises PullCancelled, and blocked reads wake."""
        with self._lock:
            if not self._cancelled.is_set():
                self._reason = reason
                self._cancelled.set()
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def check(self) -> None:
        """Raise if the pull was cancelled or ran out of time."""
        if self._cancelled.is_set():
            raise PullCancelled(f"{self.what}: pull {self._reason}")
        if self._ends is not None and time.monotonic() >= self._ends:
            raise PullDeadlineExceeded(
                f"{self.what}: pull did not finish within its deadline of {self.deadline:g} s"
            )

    def read_timeout(self) -> float:
        """The timeout for the next socket operation: the stall timeout, or less when
        the deadline is nearer. Raises when the pull is over already."""
        self.check()
        if self._ends is None:
            return self.stall_timeout
        return max(0.001, min(self.stall_timeout, self._ends - time.monotonic()))

    def timed_out(self, doing: str) -> PullInterrupted:
        """The error for a socket timeout while ``doing``: cancellation or the deadline
        when that is what ended the wait, else a stall."""
        try:
            self.check()
        except PullInterrupted as exc:
            return exc
        return PullStalled(
            f"{self.what}: registry stalled: no data for {self.stall_timeout:g} s {doing}"
        )

    def track(self, sock: socket.socket) -> None:
        """Let `cancel` shut ``sock`` down; a pull cancelled already shuts it at once."""
        with self._lock:
            self._sockets.add(sock)
            cancelled = self._cancelled.is_set()
        if cancelled:
            _shut(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already, or never connected
        sock.shutdown(socket.SHUT_RDWR)
