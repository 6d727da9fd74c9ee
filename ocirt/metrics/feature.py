"""Kanto's Metrics feature: the `request` operation, the reporting thread, the data
messages. Does I/O: one state file, and one thread of its own.

At every bootstrap the feature is published (`/features/Metrics`, no properties). The
`request` operation replaces the running request and answers 204; every `period` the
collector's snapshot goes out as a live `data` message when it is not empty
(docs/kanto-features-notes.md §2.1). Unlike Kanto, the request outlives a reconnect and a daemon
restart: it is kept in `<things home>/metrics_request.json` and reporting resumes at
the next bootstrap. Data is dropped, not queued, while the broker is away.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ocirt.atomic import Durability, write_atomic
from ocirt.errors import OcirtError
from ocirt.metrics.collector import Collector
from ocirt.metrics.request import MetricsRequest, parse_request
from ocirt.things.protocol import (
    JSON_CONTENT,
    Code,
    Command,
    DittoError,
    Outbound,
    Outcome,
)
from ocirt.things.twin import Twin

log = logging.getLogger(__name__)

METRICS = "Metrics"
METRICS_DEFINITION = "com.bosch.iot.suite.edge.metric:Metrics:1.0.0"
REQUEST_FILE = "metrics_request.json"

Send = Callable[[Outbound], None]


def metrics_feature() -> dict[str, object]:
    return {"definition": [METRICS_DEFINITION]}


def data_message(twin: Twin, snapshot: list[dict[str, object]], timestamp: int) -> Outbound:
    """The live `data` message of one tick, on the twin's `e/<tenant>/<thing>` topic."""
    body = {
        "topic": f"{twin.thing.topic_prefix}/things/live/messages/data",
        "headers": {"response-required": False, "content-type": JSON_CONTENT},
        "path": f"/features/{METRICS}/outbox/messages/data",
        "value": {"snapshot": snapshot, "timestamp": timestamp},
    }
    return Outbound(twin.topic, json.dumps(body, separators=(",", ":")).encode())


class MetricsFeature:
    """`handle` for the things front end, `on_bootstrap` for the MQTT client; `start()`,
    then `close()`."""

    def __init__(
        self,
        collector: Collector,
        state_dir: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._collector = collector
        self._path = Path(state_dir) / REQUEST_FILE
        self._clock = clock
        self._cond = threading.Condition()
        self._update = threading.Lock()
        self._request = self._load()
        self._changed = True
        self._twin: Twin | None = None
        self._send: Send | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="ocirt-metrics", daemon=True)
        if self._request.period is not None:
            collector.reset(self._request)

    @property
    def request(self) -> MetricsRequest:
        with self._cond:
            return self._request

    # ---- the things front end ---------------------------------------------------------

    def handle(self, command: Command) -> Outcome:
        """One command to /features/Metrics. Raises InvalidArgument for a bad value."""
        if command.operation != "request":
            return Outcome.failed(
                DittoError.of(
                    404, Code.SUBJECT_NOT_FOUND, f"unsupported operation {command.operation}"
                )
            )
        request = parse_request(command.value)
        # Two requests at once: the last one wins whole, baselines and file included.
        with self._update:
            self._collector.reset(request)
            with self._cond:
                self._request = request
                self._changed = True
                self._cond.notify_all()
            self._store(request)
        if request.period is None:
            log.info("metrics reporting stopped")
        else:
            log.info("metrics every %gs, %d filter item(s)", request.period, len(request.filters))
        return Outcome.done()

    def on_bootstrap(self, twin: Twin, send: Send) -> None:
        """Publish the feature (Kanto does at every registration) and report to `twin`."""
        send(twin.modify(f"/features/{METRICS}", metrics_feature()))
        with self._cond:
            self._twin = twin
            self._send = send
            self._cond.notify_all()

    # ---- the reporting thread ---------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_tick = 0.0
        while True:
            with self._cond:
                if self._closed:
                    return
                request, twin, send = self._request, self._twin, self._send
                if request.period is None or twin is None or send is None:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                if self._changed:
                    self._changed = False
                    next_tick = now + request.period
                if now < next_tick:
                    self._cond.wait(next_tick - now)
                    continue
                # Late (a slow tick, a suspended device): keep the period, skip the backlog.
                next_tick = max(next_tick + request.period, now)
            self._tick(request, twin, send)

    def _tick(self, request: MetricsRequest, twin: Twin, send: Send) -> None:
        try:
            snapshot = self._collector.snapshot(request)
            if snapshot:
                send(data_message(twin, snapshot, int(self._clock())))
        except Exception:
            log.exception("metrics tick failed")

    # ---- the persisted request ----------------------------------------------------------

    def _load(self) -> MetricsRequest:
        try:
            raw = json.loads(self._path.read_bytes())
            return parse_request(raw)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, OcirtError) as exc:
            log.warning("ignored the unreadable metrics request %s: %s", self._path, exc)
        return MetricsRequest(None)

    def _store(self, request: MetricsRequest) -> None:
        try:
            if request.period is None:
                self._path.unlink(missing_ok=True)
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(
                self._path,
                json.dumps(request.to_value()).encode(),
                mode=0o600,
                durability=Durability.CONTENT,
            )
        except OSError as exc:
            log.warning("cannot save the metrics request: %s", exc)
