"""The CLI's half of the local API: one JSON-lines call over the daemon's unix socket.
Does I/O (one socket per call).

The protocol is the server's (`ocirt.daemon.localapi`): write one line
``{"op": "...", "args": {...}}``, read answer lines until one carries "ok". An error
answer becomes an OcirtError with the daemon's status, code and message.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ocirt.errors import OcirtError, Unavailable


def request(
    path: Path,
    op: str,
    args: dict[str, Any],
    timeout: float | None = 60.0,
    *,
    connect_timeout: float | None = None,
) -> Any:
    """One call; returns the result or raises the OcirtError the daemon reported."""
    for message in stream(path, op, args, timeout, connect_timeout=connect_timeout):
        if "ok" in message:
            return message.get("result")
    raise Unavailable("the daemon closed the connection without an answer")


def stream(
    path: Path,
    op: str,
    args: dict[str, Any],
    timeout: float | None = 60.0,
    *,
    connect_timeout: float | None = None,
) -> Iterator[dict[str, Any]]:
    """The daemon's messages for one call; `connect_timeout` (default: `timeout`) bounds
    reaching the daemon, `timeout` each wait for a message after that."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout if connect_timeout is None else connect_timeout)
    try:
        try:
            sock.connect(str(path))
        except OSError as exc:
            raise Unavailable(f"cannot reach the ocirt daemon at {path}: {exc}") from exc
        sock.settimeout(timeout)
        sock.sendall(json.dumps({"op": op, "args": args}).encode() + b"\n")
        with sock.makefile("rb") as reader:
            for line in reader:
                message = json.loads(line)
                if message.get("ok") is False:
                    raise _rebuild(message.get("error") or {})
                yield message
                if "ok" in message:
                    return
    except (OSError, ValueError) as exc:
        raise Unavailable(f"talking to the ocirt daemon failed: {exc}") from exc
    finally:
        sock.close()


def _rebuild(error: dict[str, Any]) -> OcirtError:
    exc = OcirtError(str(error.get("message", "unknown error")))
    exc.status = int(error.get("status", 500))
    exc.code = str(error.get("code", OcirtError.code))
    return exc
