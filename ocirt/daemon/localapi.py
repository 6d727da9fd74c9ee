"""The local API's server: JSON lines over a unix socket under the exec root. Does I/O
(sockets). The client half, which the CLI uses, is `ocirt.cli.client`.

One request per connection: the client writes one JSON object line
``{"op": "...", "args": {...}}``; the server answers with lines. A plain answer is one
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"status", "code",
"message"}}``; `logs` streams ``{"log": {...}}`` lines and ends with ``{"ok": true}``.
The socket is mode 0600 in a 0700 directory: only root may talk to it.

Containers are named by id or by their (unique, decision 8) name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ocirt.config.ditto import parse_create_with_config, parse_update, to_ditto_config
from ocirt.config.model import ContainerId
from ocirt.errors import FailedPrecondition, InvalidArgument, NotFound, OcirtError
from ocirt.manager.types import ContainerView, StopOptions
from ocirt.things.twin import state_value

log = logging.getLogger(__name__)

SOCKET_NAME = "ocirt.sock"
MAX_REQUEST = 1024 * 1024


def view_json(view: ContainerView) -> dict[str, object]:
    """A container as the CLI prints it with --json (Ditto's status form plus the id)."""
    return {
        "id": view.id,
        "name": view.name,
        "imageRef": view.image_ref,
        "config": to_ditto_config(view.config),
        "createdAt": view.created_at,
        "state": state_value(view.state),
        "restartCount": view.restart_count,
    }


def kanto_json(view: ContainerView) -> dict[str, object]:
    """A container in kanto-cm's model (`kanto-cm get`): Kanto's persisted snake_case
    form, state.status a number."""
    from ocirt.config.kanto import to_persisted
    from ocirt.config.model import ContainerDefinition
    from ocirt.store.record import RuntimeRecord, runtime_to_persisted

    definition = ContainerDefinition(view.id, view.name, view.image_ref, view.config)
    document = to_persisted(definition)
    document.update(
        runtime_to_persisted(
            RuntimeRecord(
                state=view.state,
                created=view.created_at,
                restart_count=view.restart_count,
                manually_stopped=view.manually_stopped,
                started_successfully_before=view.started_successfully_before,
            )
        )
    )
    return document


def log_json(entry: Any) -> dict[str, object]:
    """A LogEntry in Docker's json-file shape: stream, log, time (RFC 3339)."""
    stream = getattr(entry.stream, "value", entry.stream)
    when = entry.time.isoformat() if hasattr(entry.time, "isoformat") else str(entry.time)
    return {"stream": str(stream), "log": str(entry.text), "time": when}


def _jsonable(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _error(exc: OcirtError) -> dict[str, object]:
    return {"ok": False, "error": {"status": exc.status, "code": exc.code, "message": exc.message}}


class ApiHandlers:
    """The operations, over anything with the Manager's methods (plus `logs`)."""

    def __init__(
        self,
        manager: Any,
        sysinfo: Callable[[], dict[str, object]],
        stop_timeout: float = 30.0,
    ) -> None:
        self.manager = manager
        self.sysinfo = sysinfo
        # manager.default_ctrs_stop_timeout: the grace period of a stop without a timeout.
        self.stop_timeout = stop_timeout

    def resolve(self, args: dict[str, Any]) -> ContainerId:
        """The container a request names, with kanto-cm's texts: `{"name": N}` by name
        only; `{"id": X}` by id, then by name, then by a unique id prefix (as Docker)."""
        name = args.get("name")
        ref = args.get("id")
        if name is not None and ref is None:
            if not isinstance(name, str) or not name:
                raise InvalidArgument("a container name is required")
            named = [v.id for v in self.manager.list() if v.name == name]
            if not named:
                raise NotFound(
                    f"The requested container with name = {name} was not found. "
                    "Try using an ID instead."
                )
            return ContainerId(named[0])
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("a container id or name is required")
        try:
            return ContainerId(self.manager.get(ref).id)
        except NotFound:
            pass
        views = self.manager.list()
        named = [v.id for v in views if v.name == ref]
        if len(named) == 1:
            return ContainerId(named[0])
        prefixed = sorted(v.id for v in views if v.id.startswith(ref))
        if len(prefixed) == 1:
            return ContainerId(prefixed[0])
        if prefixed:
            raise InvalidArgument(
                f"The container ID prefix = {ref} is ambiguous: it matches "
                f"{len(prefixed)} containers ({', '.join(prefixed)}). Give more of the ID."
            )
        raise NotFound(f"The requested container with ID = {ref} was not found.")

    def call(self, op: str, args: dict[str, Any]) -> object:
        if op == "create":
            return self._create(args)
        if op == "list":
            return [view_json(v) for v in self.manager.list()]
        if op == "sysinfo":
            return self.sysinfo()
        cid = self.resolve(args)
        if op == "get":
            if args.get("format") == "kanto":
                return kanto_json(self.manager.get(cid))
            return view_json(self.manager.get(cid))
        if op == "start":
            self.manager.start(cid)
        elif op == "stop":
            self.manager.stop(cid, _stop_options(args, self.stop_timeout))
        elif op == "pause":
            self.manager.pause(cid)
        elif op == "resume":
            self.manager.resume(cid)
        elif op == "rename":
            name = args.get("newName")
            if not isinstance(name, str):
                raise InvalidArgument("rename needs a new name")
            self.manager.rename(cid, name)
        elif op == "update":
            self.manager.update(cid, parse_update(args.get("value") or {}))
        elif op == "remove":
            force = bool(args.get("force", False))
            if force and args.get("timeout") is not None:
                self._stop_before_remove(cid, args)
            self.manager.remove(cid, force)
            return {"id": cid}
        else:
            raise InvalidArgument(f"unknown operation {op!r}")
        return view_json(self.manager.get(cid))

    def _stop_before_remove(self, cid: ContainerId, args: dict[str, Any]) -> None:
        """`remove -f -t T`: a graceful stop within T, then the forced remove."""
        if not self.manager.get(cid).state.status.is_active:
            return
        options = _stop_options({"timeout": args.get("timeout")}, self.stop_timeout)
        with contextlib.suppress(FailedPrecondition):
            # It ended by itself in between: the remove goes on.
            self.manager.stop(cid, options)

    def _create(self, args: dict[str, Any]) -> object:
        descriptor = args.get("descriptor")
        if descriptor is not None:
            from ocirt.daemon.deployment import descriptor_request

            if not isinstance(descriptor, str):
                raise InvalidArgument("descriptor must be the text of a container JSON file")
            image_ref, config, name = descriptor_request(descriptor)
            view = self.manager.create(image_ref, config, name)
            if args.get("start"):
                self.manager.start(view.id)
                view = self.manager.get(view.id)
        else:
            request = parse_create_with_config(args.get("value"))
            view = self.manager.create(request.image_ref, request.config, request.name)
            if request.start:
                self.manager.start(view.id)
                view = self.manager.get(view.id)
        return view_json(view)

    def logs(self, args: dict[str, Any]) -> Iterator[object]:
        cid = self.resolve(args)
        tail = args.get("tail")
        if tail is not None and (not isinstance(tail, int) or isinstance(tail, bool) or tail < 0):
            raise InvalidArgument("tail must be a number >= 0")
        since = since_arg(args.get("since"))
        follow = bool(args.get("follow", False))
        return iter(self.manager.logs(cid, tail=tail, since=since, follow=follow))


# RFC3339 with a zone: the CLI resolves relative and zone-less forms to this before sending.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")


def since_arg(value: object) -> datetime | None:
    """The `since` argument of `logs`: absent, or an RFC3339 timestamp with a zone."""
    if value is None:
        return None
    if isinstance(value, str) and _RFC3339.fullmatch(value):
        try:
            return datetime.fromisoformat(value.upper())
        except ValueError:
            pass  # a well-formed but impossible date, e.g. month 13
    raise InvalidArgument(
        f"since must be an RFC3339 timestamp with a time zone "
        f"(like 2024-01-02T15:04:05Z), not {value!r}"
    )


def _stop_options(args: dict[str, Any], default_timeout: float) -> StopOptions:
    timeout = args.get("timeout")
    if timeout is None:
        timeout = default_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidArgument("timeout must be a number of seconds")
    if not 0 <= timeout < float("inf"):
        raise InvalidArgument("timeout must be a number of seconds >= 0")
    return StopOptions(
        signal=str(args.get("signal") or "SIGTERM"),
        timeout=float(timeout),
        force=bool(args.get("force", True)),
    )


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            line = self.rfile.readline(MAX_REQUEST + 1)
            request = json.loads(line) if line.strip() else None
        except ValueError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self._send(_error(InvalidArgument("malformed request")))
            return
        args = request.get("args") or {}
        if not isinstance(args, dict):
            self._send(_error(InvalidArgument("args must be an object")))
            return
        handlers = self.server.handlers
        try:
            if request["op"] == "logs":
                for entry in handlers.logs(args):
                    self._send({"log": log_json(entry)})
                self._send({"ok": True})
                return
            result = handlers.call(request["op"], args)
            self._send({"ok": True, "result": _jsonable(result)})
        except OcirtError as exc:
            self._send(_error(exc))
        except (BrokenPipeError, ConnectionResetError):
            return
        except Exception as exc:
            log.exception("local API %s failed", request["op"])
            self._send(_error(OcirtError(str(exc))))

    def _send(self, message: object) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(json.dumps(message).encode() + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    handlers: ApiHandlers


class LocalApi:
    """Serves ApiHandlers on `<exec_root>/ocirt.sock` from a background thread."""

    def __init__(self, path: Path, handlers: ApiHandlers) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = _Server(str(self.path), _Handler)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._server.handlers = handlers
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ocirt-api", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
