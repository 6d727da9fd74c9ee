"""The CLI's half of the local API: one JSON-lines call over the daemon's unix socket.
Does I/O (one socket per call).

The protocol is the server's (`ocirt.daemon.localapi`): write one line
``{"op": "...", "args": {...}}``, read answer lines until one carries "ok". An error
answer becomes a CliError with the daemon's status, code and message.

This runs on every `ocirt list` (issue 17): no other ocirt package, and the C `_socket`
rather than `socket`, whose enums and selectors cost more than the call itself.
"""

from __future__ import annotations

import _socket
import json
import os

from ocirt.cli.common import CliError

# Not typing.TYPE_CHECKING: importing typing costs the CLI ~2 ms (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

# The code of an error that is the CLI's own: the daemon could not be reached or talked to
# (500, as ocirt.errors.Unavailable).
UNAVAILABLE = "unavailable"
_CHUNK = 64 * 1024


def request(
    path: str | os.PathLike[str],
    op: str,
    args: dict[str, Any],
    timeout: float | None = 60.0,
    *,
    connect_timeout: float | None = None,
) -> Any:
    """One call; returns the result or raises the CliError the daemon reported."""
    for message in stream(path, op, args, timeout, connect_timeout=connect_timeout):
        if "ok" in message:
            return message.get("result")
    raise CliError("the daemon closed the connection without an answer", 500, UNAVAILABLE)


def socket_path(address: str | os.PathLike[str]) -> str:
    """The unix socket of a --host value: a path, or unix:///path (kanto-cm's form)."""
    path = os.fspath(address)
    if path.startswith("unix://"):
        return path[len("unix://") :]
    if "://" in path:
        raise CliError(
            f"unsupported daemon address {path!r}: ocirt's daemon listens on a unix "
            "socket (a path, or unix:///path)"
        )
    return path


def stream(
    path: str | os.PathLike[str],
    op: str,
    args: dict[str, Any],
    timeout: float | None = 60.0,
    *,
    connect_timeout: float | None = None,
) -> Iterator[dict[str, Any]]:
    """The daemon's messages for one call; `connect_timeout` (default: `timeout`) bounds
    reaching the daemon, `timeout` each wait for a message after that."""
    address = socket_path(path)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout if connect_timeout is None else connect_timeout)
    try:
        try:
            sock.connect(address)
        except OSError as exc:
            raise CliError(
                f"cannot reach the ocirt daemon at {address}: {exc}", 500, UNAVAILABLE
            ) from exc
        sock.settimeout(timeout)
        sock.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
        for line in _lines(sock):
            message = json.loads(line)
            if message.get("ok") is False:
                raise _rebuild(message.get("error") or {})
            yield message
            if "ok" in message:
                return
    except (OSError, ValueError) as exc:
        raise CliError(f"talking to the ocirt daemon failed: {exc}", 500, UNAVAILABLE) from exc
    finally:
        sock.close()


def _lines(sock: _socket.socket) -> Iterator[bytes]:
    """The lines the daemon writes, until it closes the connection."""
    pending = b""
    while True:
        chunk = sock.recv(_CHUNK)
        if not chunk:
            if pending:
                yield pending
            return
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]


def _rebuild(error: dict[str, Any]) -> CliError:
    try:
        status = int(error.get("status", 500))
    except (TypeError, ValueError):
        status = 500
    return CliError(
        str(error.get("message", "unknown error")),
        status,
        str(error.get("code", "messages:execution.failed")),
    )
