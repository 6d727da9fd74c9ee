"""Runs each running container's health check on its schedule.

One thread per running container with a check: it waits `interval`, runs the test in the
container through a `ProbeRunner` (`ocirt.health.probe`: its own `runc exec`; the process
inherits the container's env, user and working directory from its spec), bounded by
`timeout`, and records the result (`ocirt.health.state`). A new run (a RUNNING event with
a new start time) starts afresh in `starting`; a stopped container's last health is kept,
marked by its run; a removed container's is dropped. A paused container is not probed
(runc refuses to exec in it; a pause is no failure). When a container turns unhealthy and
its restart policy is `always` or `unless-stopped`, the monitor restarts it (stop with
the default timeout, then start). Time and threads are ports too, for the unit tests.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from ocirt.config.model import RestartPolicyType
from ocirt.errors import OcirtError
from ocirt.health.healthcheck import Healthcheck
from ocirt.health.probe import ProbeRunner
from ocirt.health.state import STARTING, UNHEALTHY, Health, Probe, record
from ocirt.manager.types import ContainerView, Event, EventKind, Status, StopOptions

_log = logging.getLogger(__name__)

Lookup = Callable[[str], Healthcheck | None]
_RESTARTING = (RestartPolicyType.ALWAYS, RestartPolicyType.UNLESS_STOPPED)


class Manager(Protocol):
    def get(self, container_id: str, /) -> ContainerView: ...

    def list(self) -> object: ...

    def stop(self, container_id: str, options: StopOptions, /) -> object: ...

    def start(self, container_id: str, /) -> object: ...

    def subscribe(self, callback: Callable[[Event], None], /) -> Callable[[], None]: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wait(self, stop: threading.Event, seconds: float, /) -> bool:
        """Wait `seconds` or until `stop` is set; True when it is set."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float, /) -> bool:
        return stop.wait(seconds)


# Starts `target` on its own thread, named `name`.
Spawn = Callable[[Callable[[], None], str], None]


def _spawn_thread(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class _Run:
    container_id: str
    started_at: str
    check: Healthcheck
    began: float
    health: Health = field(default_factory=Health)
    stop: threading.Event = field(default_factory=threading.Event)
    paused: bool = False


class HealthMonitor:
    def __init__(
        self,
        manager: Manager,
        lookup: Lookup,
        runner: ProbeRunner,
        stop_timeout: float = 30.0,
        *,
        clock: Clock | None = None,
        spawn: Spawn = _spawn_thread,
    ) -> None:
        self._manager = manager
        self._lookup = lookup
        self._runner = runner
        self._stop_timeout = stop_timeout
        self._clock = clock if clock is not None else SystemClock()
        self._spawn = spawn
        self._runs: dict[str, _Run] = {}
        # container id -> (start time, last status) of the run before the current one:
        # the activation gate asks about a run that an unhealthy restart replaced.
        self._ended: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    def start(self) -> None:
        self._unsubscribe = self._manager.subscribe(self._on_event)
        views = self._manager.list()
        assert isinstance(views, list | tuple)
        for view in views:
            if isinstance(view, ContainerView) and view.state.status is Status.RUNNING:
                self._begin(view)

    def close(self) -> None:
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop.set()

    # ---- queries --------------------------------------------------------------------------

    def check_of(self, view: ContainerView) -> Healthcheck | None:
        try:
            return self._lookup(view.image_ref)
        except (OcirtError, OSError) as exc:
            _log.warning("health check of %s unknown: %s", view.image_ref, exc)
            return None

    def health(self, container_id: str) -> Health | None:
        with self._lock:
            run = self._runs.get(container_id)
        return run.health if run is not None else None

    def health_json(self, container_id: str) -> dict[str, object] | None:
        health = self.health(container_id)
        return health.to_json() if health is not None else None

    def verdict(
        self, container_id: str, started_at: str | None = None, /
    ) -> tuple[str, float] | None:
        """For the activation gate (`ocirt.health.gate`): (status of the run that began at
        `started_at`, by default the current one; the least time a verdict may take: the
        start period, or one probe when that is longer), or None when the image has no
        health check. A run not seen yet is starting."""
        view = self._manager.get(container_id)
        check = self.check_of(view)
        if check is None:
            return None
        least = max(check.start_period, check.interval + check.timeout)
        wanted = started_at if started_at is not None else view.state.started_at
        with self._lock:
            run = self._runs.get(container_id)
            ended = self._ended.get(container_id)
        if run is not None and run.started_at == wanted:
            return run.health.status, least
        if ended is not None and ended[0] == wanted:
            return ended[1], least
        return STARTING, least

    # ---- runs -------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        view = event.container
        if event.kind is EventKind.REMOVED:
            self._end(view.id, forget=True)
        elif event.kind is EventKind.STATE:
            if view.state.status is Status.RUNNING:
                self._begin(view)
            elif view.state.status is Status.PAUSED:
                self._pause(view.id)
            elif not view.state.status.is_active:
                self._end(view.id, forget=False)

    def _begin(self, view: ContainerView) -> None:
        if self._closed:
            return
        check = self.check_of(view)
        if check is None:
            return
        with self._lock:
            old = self._runs.get(view.id)
            if old is not None and old.started_at == view.state.started_at:
                old.paused = False  # a resume
                return
            run = _Run(view.id, view.state.started_at, check, self._clock.monotonic())
            self._runs[view.id] = run
            if old is not None:
                self._ended[view.id] = (old.started_at, old.health.status)
        if old is not None:
            old.stop.set()
        self._spawn(lambda: self._probe_loop(run), f"ocirt-health-{view.id[:8]}")

    def _pause(self, container_id: str) -> None:
        with self._lock:
            run = self._runs.get(container_id)
            if run is not None:
                run.paused = True

    def _end(self, container_id: str, *, forget: bool) -> None:
        with self._lock:
            run = self._runs.pop(container_id, None) if forget else self._runs.get(container_id)
            if forget:
                self._ended.pop(container_id, None)
        if run is not None:
            run.stop.set()

    def _probe_loop(self, run: _Run) -> None:
        while not self._clock.wait(run.stop, run.check.interval):
            if run.paused:
                continue
            probe = self._probe(run)
            if run.stop.is_set():
                return
            if run.paused:
                continue  # paused during the probe: its frozen test tells nothing
            in_start = self._clock.monotonic() - run.began < run.check.start_period
            with self._lock:
                before = run.health.status
                run.health = record(run.health, run.check, probe, in_start)
                after = run.health.status
            if before != after:
                _log.info("container %s is %s", run.container_id, after)
            if after == UNHEALTHY and before != UNHEALTHY and self._on_unhealthy(run):
                return  # the restart begins a new run

    def _probe(self, run: _Run) -> Probe:
        start = _now()
        check = run.check
        try:
            result = self._runner.run(run.container_id, check.argv, check.timeout)
        except OSError as exc:
            return Probe(start, _now(), -1, f"cannot run the health check: {exc}")
        if result.timed_out:
            # Docker's text; a partial output is dropped, as Docker does.
            message = f"Health check exceeded timeout ({check.timeout:g}s)"
            return Probe(start, _now(), -1, message)
        return Probe(start, _now(), result.exit_code, result.output)

    def _on_unhealthy(self, run: _Run) -> bool:
        """Restart the container when its policy says so; True when it was restarted."""
        try:
            view = self._manager.get(run.container_id)
        except OcirtError:
            return False
        if view.config.restart_policy.type not in _RESTARTING:
            return False
        if view.state.started_at != run.started_at or view.state.status is not Status.RUNNING:
            return False
        _log.warning("restarting unhealthy container %s (%s)", view.name, view.id)
        with contextlib.suppress(OcirtError):
            self._manager.stop(view.id, StopOptions("SIGTERM", self._stop_timeout, True))
        try:
            self._manager.start(view.id)
        except OcirtError as exc:
            _log.error("cannot restart unhealthy container %s: %s", view.id, exc.message)
        return True
