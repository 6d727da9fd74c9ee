"""The CLI's half of the local API: one JSON-lines call over the daemon's unix socket.
Does I/O (one socket per call).

The protocol is the server's (`ocirt.daemon.localapi`): write one line
``{"op": "...", "args": {...}}``, read answer lines until one carries "ok". An error
answer becomes a CliError with the daemon's status, code and message.

This runs on every `ocirt list` (issue 17): no other ocirt package, the C `_socket`
rather than `socket` (whose enums and selectors cost more than the call itself), and the
C half of `json` (`_json`) rather than the package, which imports `re` and compiles its
patterns: `encode` and `decode` are json.dumps and json.loads for the JSON values a
request and an answer hold (tests/unit/cli/test_client.py holds them side by side).
"""

from __future__ import annotations

import _json
import _socket
import os

from ocirt.cli.errors import CliError

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
        sock.sendall(encode({"op": op, "args": args}).encode() + b"\n")
        for line in _lines(sock):
            message = decode(line)
            if message.get("ok") is False:
                raise _rebuild(message.get("error") or {})
            yield message
            if "ok" in message:
                return
    except (OSError, ValueError, TypeError) as exc:
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


class _Context:
    """What `_json.make_scanner` reads: json.loads' defaults (NaN and Infinity included)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo: dict[str, object] = {}


# typeshed types the context as a scanner; any object with these attributes will do.
_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]


def decode(text: bytes | str) -> Any:
    """json.loads of one JSON text. Raises ValueError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"invalid JSON at {start}: {text[:80]!r}") from None
    if text[end:].strip(" \t\n\r"):
        raise ValueError(f"extra data after the JSON value at {end}: {text[:80]!r}")
    return value


def encode(value: object) -> str:
    """json.dumps(value, separators=(",", ":")) for dicts with str keys, lists, tuples,
    str, int, finite float, bool and None. Raises TypeError or ValueError."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return str(_json.encode_basestring_ascii(value))
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} is not a JSON number")
        return float.__repr__(value)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON keys are strings, not {key!r}")
            items.append(f"{_json.encode_basestring_ascii(key)}:{encode(item)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(encode(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON")
