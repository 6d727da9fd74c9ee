"""The local API's server: JSON lines over a unix socket under the exec root. Does I/O
(sockets). The client half, which the CLI uses, is `ocirt.cli.client`.

One request per connection: the client writes one JSON object line
``{"op": "...", "args": {...}}``; the server answers with lines. A plain answer is one
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"status", "code",
"message"}}``; `logs` streams ``{"log": {...}}`` lines and ends with ``{"ok": true}``.
The socket is mode 0600 in a 0700 directory: only root may talk to it.

Containers are named by id or by their (unique, decision 8) name.

Bounds (the `limits` section of the daemon config): at most `api_max_connections` open
connections, the next one is answered 503 and closed; a connection silent for
`api_idle_timeout` is closed; a request nested deeper than the JSON parser goes is a 400.
Operations that change a container run on the daemon's lanes (`ocirt.lanes`), shared with
the MQTT front end: a create that pulls never holds up a stop, and a full queue is a 503.
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
from concurrent.futures import CancelledError
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ocirt.config.ditto import parse_create_with_config, parse_update, to_ditto_config
from ocirt.config.model import ContainerId
from ocirt.errors import InvalidArgument, NotFound, OcirtError, Overloaded
from ocirt.lanes import Lane, Lanes
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


@dataclass(frozen=True, slots=True)
class ApiLimits:
    max_connections: int = 64
    idle_timeout: float = 30.0


class ApiHandlers:
    """The operations, over anything with the Manager's methods (plus `logs`). With
    `lanes`, operations that change containers run there; reads run on the caller."""

    def __init__(
        self,
        manager: Any,
        sysinfo: Callable[[], dict[str, object]],
        lanes: Lanes | None = None,
    ) -> None:
        self.manager = manager
        self.sysinfo = sysinfo
        self.lanes = lanes

    def _in_lane(self, lane: Lane, key: str | None, run: Callable[[], object]) -> object:
        if self.lanes is None:
            return run()
        task = self.lanes.submit(lane, key, run)
        try:
            return task.future.result()
        except CancelledError:
            raise Overloaded("the daemon is stopping; try again once it is back") from None

    def resolve(self, ref: object) -> ContainerId:
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("a container id or name is required")
        try:
            return ContainerId(self.manager.get(ref).id)
        except NotFound:
            pass
        matches = [v.id for v in self.manager.list() if v.name == ref]
        if len(matches) == 1:
            return ContainerId(matches[0])
        raise NotFound(f"no such container with id = {ref} exists")

    def call(self, op: str, args: dict[str, Any]) -> object:
        if op == "create":
            return self._in_lane(Lane.SLOW, None, lambda: self._create(args))
        if op == "list":
            return [view_json(v) for v in self.manager.list()]
        if op == "sysinfo":
            return self.sysinfo()
        cid = self.resolve(args.get("id"))
        if op == "get":
            return view_json(self.manager.get(cid))
        if op not in _CONTROL_OPS:
            raise InvalidArgument(f"unknown operation {op!r}")
        # Keyed as the MQTT front end keys it: one order per container across both.
        return self._in_lane(Lane.CONTROL, f"Container:{cid}", lambda: self._control(op, cid, args))

    def _control(self, op: str, cid: ContainerId, args: dict[str, Any]) -> object:
        if op == "start":
            self.manager.start(cid)
        elif op == "stop":
            self.manager.stop(cid, _stop_options(args))
        elif op == "pause":
            self.manager.pause(cid)
        elif op == "resume":
            self.manager.resume(cid)
        elif op == "rename":
            name = args.get("name")
            if not isinstance(name, str):
                raise InvalidArgument("rename needs a new name")
            self.manager.rename(cid, name)
        elif op == "update":
            self.manager.update(cid, parse_update(args.get("value") or {}))
        elif op == "remove":
            self.manager.remove(cid, bool(args.get("force", False)))
            return {"id": cid}
        else:
            raise InvalidArgument(f"unknown operation {op!r}")
        return view_json(self.manager.get(cid))

    def _create(self, args: dict[str, Any]) -> object:
        descriptor = args.get("descriptor")
        if descriptor is not None:
            from ocirt.daemon.deployment import descriptor_request

            if not isinstance(descriptor, str):
                raise InvalidArgument("descriptor must be the text of a container JSON file")
            image_ref, config, name = descriptor_request(descriptor)
            view = self.manager.create(image_ref, config, name)
        else:
            request = parse_create_with_config(args.get("value"))
            view = self.manager.create(request.image_ref, request.config, request.name)
            if request.start:
                self.manager.start(view.id)
                view = self.manager.get(view.id)
        return view_json(view)

    def logs(self, args: dict[str, Any]) -> Iterator[object]:
        cid = self.resolve(args.get("id"))
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


_CONTROL_OPS = frozenset({"start", "stop", "pause", "resume", "rename", "update", "remove"})


def _stop_options(args: dict[str, Any]) -> StopOptions:
    defaults = StopOptions()
    timeout = args.get("timeout", defaults.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidArgument("timeout must be a number of seconds")
    return StopOptions(
        signal=str(args.get("signal") or "SIGTERM"),
        timeout=float(timeout),
        force=bool(args.get("force", True)),
    )


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        # A silent peer is let go (reads and writes alike) rather than holding a thread.
        self.connection.settimeout(self.server.limits.idle_timeout)

    def handle(self) -> None:
        try:
            line = self.rfile.readline(MAX_REQUEST + 1)
        except (TimeoutError, OSError):
            log.debug("local API: closed a connection that sent no request in time")
            return
        if len(line) > MAX_REQUEST:
            self._send(_error(InvalidArgument(f"request over {MAX_REQUEST} bytes")))
            return
        try:
            request = json.loads(line) if line.strip() else None
        except RecursionError:
            self._send(_error(InvalidArgument("malformed request: nested too deeply")))
            return
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
    limits: ApiLimits

    def __init__(self, path: str, limits: ApiLimits) -> None:
        self.limits = limits
        self._open = 0
        self._count_lock = threading.Lock()
        super().__init__(path, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            full = self._open >= self.limits.max_connections
            if not full:
                self._open += 1
        if full:
            # Answered on the listener's thread, briefly: no thread for a refused peer.
            refusal = _error(
                Overloaded(f"too many local API connections ({self.limits.max_connections})")
            )
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(json.dumps(refusal).encode() + b"\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._count_lock:
            self._open -= 1


class LocalApi:
    """Serves ApiHandlers on `<exec_root>/ocirt.sock` from a background thread."""

    def __init__(self, path: Path, handlers: ApiHandlers, limits: ApiLimits | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = _Server(str(self.path), limits or ApiLimits())
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
