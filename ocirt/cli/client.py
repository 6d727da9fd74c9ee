"""The CLI's half of the local API: one JSON-lines call over the daemon's unix socket.
Does I/O (one socket per call).

The protocol is the server's (`ocirt.daemon.localapi`): write one line
``{"op": "...", "args": {...}}``, read answer lines until one carries "ok". An error
answer becomes a CliError with the daemon's status, code and message. No other ocirt
package is imported: this runs on every `ocirt list` (issue 17).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from typing import Any

from ocirt.cli.common import CliError

# What an unreachable daemon answers with (Ditto's 503 has no meaning here; kept at 500,
# as ocirt.errors.Unavailable).
UNAVAILABLE = "unavailable"


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
    path = os.fspath(path)
    if path.startswith("unix://"):
        path = path[len("unix://") :]
    elif "://" in path:
        raise CliError(
            f"unsupported daemon address {path!r}: ocirt's daemon listens on a unix "
            "socket (a path, or unix:///path)"
        )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout if connect_timeout is None else connect_timeout)
    try:
        try:
            sock.connect(path)
        except OSError as exc:
            raise CliError(
                f"cannot reach the ocirt daemon at {path}: {exc}", 500, UNAVAILABLE
            ) from exc
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
        raise CliError(f"talking to the ocirt daemon failed: {exc}", 500, UNAVAILABLE) from exc
    finally:
        sock.close()


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
