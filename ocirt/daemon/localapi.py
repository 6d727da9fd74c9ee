"""The local API's server: JSON lines over a unix socket under the exec root. Does I/O
(sockets). The client half, which the CLI uses, is `ocirt.cli.client`.

One request per connection: the client writes one JSON object line
``{"op": "...", "args": {...}}``; the server answers with lines. A plain answer is one
``{"ok": true, "result": ...}`` or ``{"ok": false, "error": {"status", "code",
"message"}}``; `logs` streams ``{"log": {...}}`` lines and ends with ``{"ok": true}``.
The socket is mode 0600 in a 0700 directory: only root may talk to it.

Containers are named by id or by their (unique, docs/kanto-compatibility.md decision 8) name.

Images (`image.pull|list|remove|load|save`) are the daemon's own store, with its registry
settings, insecure registries, credentials and decryption keys: the CLI never opens a
store of its own. `image.pull` streams ``{"progress": {...}}`` lines (at most a few a
second per layer) before its answer. Paths (`load`, `save`, key files) are the daemon's:
the CLI sends them absolute.

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
import queue
import re
import socketserver
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from dataclasses import asdict, dataclass, is_dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ocirt.config.ditto import parse_create_with_config, parse_update, to_ditto_config
from ocirt.config.model import ContainerId
from ocirt.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OcirtError,
    Overloaded,
    Unavailable,
)
from ocirt.lanes import Lane, Lanes
from ocirt.manager import frontend
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


# How often one layer's pull progress is passed on (the CLI redraws one line).
PROGRESS_INTERVAL = 0.25


def image_json(image: Any) -> dict[str, object]:
    """An image as `image list` and `image pull` give it."""
    return {
        "reference": str(image.reference),
        "digest": str(image.digest),
        "size": int(image.size),
        "pulledAt": float(image.pulled_at),
    }


def damaged_json(record: Any) -> dict[str, object]:
    """A damaged image record as `image list` gives it: removable by its record name."""
    return {
        "reference": record.reference or "",
        "record": record.name,
        "damaged": record.reason,
    }


def _text_arg(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{key} is required")
    return value


def _texts_arg(args: dict[str, Any], key: str) -> list[str]:
    value = args.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidArgument(f"{key} must be a list of strings")
    return list(value)


def _absolute_arg(args: dict[str, Any], key: str) -> Path:
    path = Path(_text_arg(args, key))
    if not path.is_absolute():
        raise InvalidArgument(f"{key} must be an absolute path (the daemon reads it)")
    return path


class ImageHandlers:
    """`image.*` over the daemon's ImageService (anything with its methods).

    `containers` lists the containers, so that an image in use is not removed unless
    forced; `default_keys` are the daemon's `image_dec_keys` and `image_dec_recipients`,
    used by a pull that names none (as a container create does).
    """

    def __init__(
        self,
        images: Any,
        containers: Callable[[], Sequence[ContainerView]],
        default_keys: tuple[Sequence[str], Sequence[str]] = ((), ()),
    ) -> None:
        self.images = images
        self.containers = containers
        self.default_keys = default_keys

    def call(self, op: str, args: dict[str, Any]) -> object:
        if op == "image.list":
            listing = self.images.listing()
            return [image_json(i) for i in listing.images] + [
                damaged_json(d) for d in listing.damaged
            ]
        if op == "image.remove":
            return self._remove(_text_arg(args, "reference"), bool(args.get("force", False)))
        if op == "image.load":
            name = args.get("name")
            if name is not None and not isinstance(name, str):
                raise InvalidArgument("name must be a string")
            loaded = self.images.load(_absolute_arg(args, "path"), name or None)
            return [image_json(i) for i in loaded]
        if op == "image.save":
            references = _texts_arg(args, "references")
            if not references:
                raise InvalidArgument("references are required")
            self.images.save(references, _absolute_arg(args, "output"))
            return {"output": str(args["output"])}
        raise InvalidArgument(f"unknown operation {op!r}")

    def _remove(self, reference: str, force: bool) -> object:
        from ocirt.image.reference import parse_reference

        # A damaged record goes by the record name `image list` shows for it.
        if any(d.name == reference for d in self.images.listing().damaged):
            self.images.remove_damaged(reference)
            return {"reference": reference}
        name = str(parse_reference(reference))
        users = []
        for view in self.containers():
            try:
                if str(parse_reference(view.image_ref)) == name:
                    users.append(view)
            except OcirtError:
                continue
        if users and not force:
            which = ", ".join(f"{v.name} ({v.id})" for v in users)
            raise FailedPrecondition(
                f"image {name} is used by container {which}: remove the container first, "
                "or force the removal"
            )
        self.images.remove(name)
        return {"reference": name}

    def pull(self, args: dict[str, Any]) -> Iterator[dict[str, object]]:
        """Progress messages, then ``{"result": image}``. The pull runs on its own thread
        so that its layer workers' reports can be written from this one."""
        reference = _text_arg(args, "reference")
        keys = _texts_arg(args, "keys")
        recipients = _texts_arg(args, "recipients")
        if not (keys or recipients):
            keys, recipients = list(self.default_keys[0]), list(self.default_keys[1])
        decrypt = None
        if keys or recipients:
            from ocirt.image.service import load_decrypt_keys

            decrypt = load_decrypt_keys(keys, recipients)
        events: queue.Queue[Any] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["image"] = self.images.pull(reference, decrypt, events.put)
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                events.put(None)

        worker = threading.Thread(target=work, name="ocirt-image-pull", daemon=True)
        worker.start()
        sent: dict[str, float] = {}
        while (event := events.get()) is not None:
            layer = str(event.layer)
            now = time.monotonic()
            last = sent.get(layer)
            if event.done < event.total and last is not None and now - last < PROGRESS_INTERVAL:
                continue
            sent[layer] = now
            yield {"progress": {"layer": layer, "done": event.done, "total": event.total}}
        worker.join()
        if "error" in outcome:
            self._discard_leftovers()
            raise outcome["error"]
        yield {"result": image_json(outcome["image"])}

    def _discard_leftovers(self) -> None:
        # A failed pull leaves nothing behind: the blobs and snapshots it stored before
        # failing belong to no image. (None: another pull is under way; the hourly sweep
        # takes them then.)
        try:
            self.images.gc(set(), None)
        except (OcirtError, OSError) as exc:
            log.warning("cleaning up after a failed pull: %s", exc)


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
        extra: dict[str, Callable[[dict[str, Any]], object]] | None = None,
        health: Callable[[str], dict[str, object] | None] | None = None,
        stats: Callable[[list[str] | None, object], object] | None = None,
        images: ImageHandlers | None = None,
        lanes: Lanes | None = None,
    ) -> None:
        self.manager = manager
        self.sysinfo = sysinfo
        # Operations of other services (the update agent's `apply`).
        self.extra = extra or {}
        # A container's health (`ocirt.health`), shown by get and list when it has one.
        self.health = health
        # (container ids or None for all running, interval in seconds) -> rows.
        self.stats = stats
        self.images = images
        # Operations that change containers run there (shared with MQTT); reads run on
        # the caller.
        self.lanes = lanes

    def _in_lane(self, lane: Lane, key: str | None, run: Callable[[], object]) -> object:
        if self.lanes is None:
            return run()
        task = self.lanes.submit(lane, key, run)
        try:
            return task.future.result()
        except CancelledError:
            raise Overloaded("the daemon is stopping; try again once it is back") from None

    def _view(self, view: ContainerView) -> dict[str, object]:
        out = view_json(view)
        health = self.health(view.id) if self.health is not None else None
        if health is not None:
            out["health"] = health
        return out

    def image_handlers(self) -> ImageHandlers:
        if self.images is None:
            raise InvalidArgument("this daemon has no image store")
        return self.images

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
            return self._in_lane(Lane.SLOW, None, lambda: self._create(args))
        if op == "list":
            return [self._view(v) for v in self.manager.list()]
        if op == "sysinfo":
            return self.sysinfo()
        if op in self.extra:
            return self.extra[op](args)
        if op == "stats":
            return self._stats(args)
        if op.startswith("image."):
            return self.image_handlers().call(op, args)
        cid = self.resolve(args)
        if op == "get":
            if args.get("format") == "kanto":
                return kanto_json(self.manager.get(cid))
            return self._view(self.manager.get(cid))
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

    def _stats(self, args: dict[str, Any]) -> object:
        """`{"ids": [id or name, ...] (absent: every running container), "interval": s}`."""
        if self.stats is None:
            raise Unavailable("this daemon does not collect metrics")
        refs = args.get("ids")
        if refs is not None and not isinstance(refs, list):
            raise InvalidArgument("ids must be a list of container ids or names")
        ids = [str(self.resolve({"id": ref})) for ref in refs] if refs else None
        return self.stats(ids, args.get("interval", 1.0))

    def _stop_before_remove(self, cid: ContainerId, args: dict[str, Any]) -> None:
        """`remove -f -t T`: a graceful stop within T, then the forced remove."""
        if not self.manager.get(cid).state.status.is_active:
            return
        options = _stop_options({"timeout": args.get("timeout")})
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
            view = frontend.create(self.manager, parse_create_with_config(args.get("value")))
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


_CONTROL_OPS = frozenset({"start", "stop", "pause", "resume", "rename", "update", "remove"})


def _stop_options(args: dict[str, Any]) -> StopOptions:
    """The options the caller gave; the rest are a plain stop's (`StopOptions`)."""
    options = StopOptions()
    timeout = args.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise InvalidArgument("timeout must be a number of seconds")
        if not 0 <= timeout < float("inf"):
            raise InvalidArgument("timeout must be a number of seconds >= 0")
        options = replace(options, timeout=float(timeout))
    if args.get("signal"):
        options = replace(options, signal=str(args["signal"]))
    if "force" in args:
        options = replace(options, force=bool(args["force"]))
    return options


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
            if request["op"] == "image.pull":
                for message in handlers.image_handlers().pull(args):
                    if "result" in message:
                        self._send({"ok": True, "result": message["result"]})
                    else:
                        self._send(message)
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
