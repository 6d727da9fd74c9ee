"""The container manager: Kanto's container use cases over runc, the monitor and the
store. Does I/O (through runc, the monitor, the store and the two ports).

Concurrency, one model: plain threads. A registry lock guards the id -> entry table and
the names; each container has its own lock, held for a whole operation, so operations
on one container are serialised and operations on different containers run in
parallel. Exit notices arrive on a listener thread (`ocirt.manager.exits`) and are
handled, like restart timers, on a small worker pool that takes the container's lock.
Events go to subscribers through one dispatcher thread (`ocirt.manager.events`), so no
callback runs under a lock. The pure rules (state table, restart policy, stop options)
know nothing of this.

Lifecycle (kanto-reference §2, §7): `create` persists the definition and writes the
bundle (so that a spec that cannot be built is refused at once) but runs nothing;
`start` activates the rootfs, attaches the network, rewrites the spec with that
attachment and the current config, and has the monitor run `runc run -d` (one runc
process creates and starts the container, where `create` + `start` took two). A start
cut short by a crash before RUNNING is persisted counts as never having happened:
recovery force-deletes what it made. An exit is recorded by the container's monitor
(`exit.json`, which survives the manager) and then applied: EXITED, runtime resources
released, restart policy with back-off.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from ocirt.atomic import Durability, remove_tree, write_atomic
from ocirt.config.defaults import fill_defaults
from ocirt.config.ditto import ContainerUpdate, apply_update
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    ContainerId,
    LogDriver,
    LogMode,
    NetworkMode,
)
from ocirt.config.sizes import parse_size
from ocirt.config.validation import check_name, check_unique_name, validate
from ocirt.errors import NotFound, OcirtError, RuncError
from ocirt.logs.jsonline import LogEntry
from ocirt.manager import rules
from ocirt.manager.events import EventBus, Subscriber
from ocirt.manager.exits import ExitListener
from ocirt.manager.faults import crash_point
from ocirt.manager.ports import Attached, NetworkProvider, RootfsProvider
from ocirt.manager.types import ContainerState, ContainerView, Event, EventKind, StopOptions
from ocirt.runtime import monitor
from ocirt.runtime import restart as policy
from ocirt.runtime.hostfacts import image_user, stat_device
from ocirt.runtime.runc import MemoryUpdate, Runc, RuncStatus
from ocirt.runtime.state import Operation, Status, check
from ocirt.spec import layout
from ocirt.spec.builder import build_spec
from ocirt.spec.facts import BundlePaths, HostFacts, ImageConfig, NetworkAttachment
from ocirt.store.containers import ContainerPaths, ContainerStore, StoredContainer
from ocirt.store.record import RuntimeRecord

_log = logging.getLogger(__name__)

# After SIGKILL a container is gone within milliseconds; this bounds a stuck kernel.
KILL_WAIT = 10.0
# How often a waiting stop looks at the exit record when no notice has arrived.
_EXIT_POLL = 0.1
HANDLE_FILE = "handle.json"


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    """Kanto's `manager` settings (home_dir, exec_root_dir, default stop timeout)."""

    home_dir: Path
    exec_root: Path
    runtime: str = "runc"
    runtime_root: Path | None = None
    stop_timeout: float = 30.0
    # Containers' cgroups are <parent>/<id>, relative to the manager's own cgroup.
    cgroup_parent: str = layout.DEFAULT_CGROUP_PARENT

    @property
    def runc_root(self) -> Path:
        return self.runtime_root or self.exec_root / "runc"

    @property
    def notify_socket(self) -> Path:
        return self.exec_root / "notify.sock"


class _Entry:
    """One container's mutable slot in the manager; touched only under `lock`."""

    __slots__ = (
        "backoff",
        "exited",
        "lock",
        "removed",
        "run_started",
        "stored",
        "timer",
        "timer_token",
    )

    def __init__(self, stored: StoredContainer) -> None:
        self.lock = threading.RLock()
        self.stored = stored
        self.removed = False
        # Set (without the lock) by the exit listener; a waiting stop wakes on it.
        self.exited = threading.Event()
        self.timer: threading.Timer | None = None
        self.timer_token = 0
        self.backoff = 0.0
        self.run_started = 0.0

    @property
    def id(self) -> ContainerId:
        return self.stored.definition.id

    @property
    def state(self) -> ContainerState:
        return self.stored.runtime.state

    def view(self) -> ContainerView:
        d, r = self.stored.definition, self.stored.runtime
        return ContainerView(
            id=d.id,
            name=d.name,
            image_ref=d.image_ref,
            config=d.config,
            created_at=r.created,
            state=r.state,
            restart_count=r.restart_count,
            manually_stopped=r.manually_stopped,
            started_successfully_before=r.started_successfully_before,
        )


class Manager:
    """The use cases. Construct, call `recover()` once, then serve; `close()` at the end."""

    def __init__(
        self,
        settings: ManagerSettings,
        rootfs: RootfsProvider,
        network: NetworkProvider,
        host: HostFacts,
    ) -> None:
        self.settings = settings
        self.rootfs = rootfs
        self.network = network
        self.host = host
        self.store = ContainerStore(settings.home_dir)
        self.runc = Runc(settings.runc_root, settings.runtime)
        self._entries: dict[str, _Entry] = {}
        self._registry = threading.Lock()
        self._events = EventBus()
        self._workers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ocirt-mgr")
        self._closed = False
        settings.exec_root.mkdir(parents=True, exist_ok=True)
        settings.runc_root.mkdir(parents=True, exist_ok=True)
        self._listener = ExitListener(settings.notify_socket, self._on_notice, self._sweep)

    # ------------------------------------------------------------------ queries

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._events.subscribe(callback)

    def get(self, container_id: str) -> ContainerView:
        entry = self._entry(container_id)
        with entry.lock:
            self._check_exit(entry)
            return entry.view()

    def list(self) -> Sequence[ContainerView]:
        with self._registry:
            entries = list(self._entries.values())
        views = []
        for entry in entries:
            with entry.lock:
                if entry.removed:
                    continue
                self._check_exit(entry)
                views.append(entry.view())
        return sorted(views, key=lambda v: v.created_at)

    def log_path(self, container_id: str) -> Path:
        entry = self._entry(container_id)
        return self._paths(entry.stored.definition).log

    def logs(
        self,
        container_id: str,
        tail: int | None = None,
        since: datetime | None = None,
        follow: bool = False,
    ) -> Iterator[LogEntry]:
        """The container's json-file log entries (see `ocirt.logs.reader`)."""
        from ocirt.logs import reader

        entry = self._entry(container_id)
        config = entry.stored.definition.config
        if config.log.driver is LogDriver.NONE:
            return iter(())
        path = self._paths(entry.stored.definition).log

        def finished() -> bool:
            with entry.lock:
                if not entry.removed:
                    self._check_exit(entry)
                return entry.removed or not entry.state.status.is_active

        return reader.read_logs(path, tail=tail, since=since, follow=follow, stop=finished)

    # ------------------------------------------------------------------ create

    def create(
        self, image_ref: str, config: ContainerConfig, name: str | None = None
    ) -> ContainerView:
        container_id = ContainerId(str(uuid.uuid4()))
        definition = fill_defaults(ContainerDefinition(container_id, name or "", image_ref, config))
        validate(definition)
        runtime = RuntimeRecord(state=ContainerState(Status.CREATING), created=rules.rfc3339nano())
        entry = _Entry(StoredContainer(definition, runtime))
        with entry.lock:
            with self._registry:
                self._check_open()
                check_unique_name(definition.name, self._names())
                self._entries[container_id] = entry
            try:
                self._create(entry)
            except BaseException:
                with self._registry:
                    self._entries.pop(container_id, None)
                entry.removed = True
                raise
            view = entry.view()
        self._emit(EventKind.CREATED, view)
        self._emit(EventKind.STATE, view)
        return view

    def _create(self, entry: _Entry) -> None:
        definition = entry.stored.definition
        paths = self._paths(definition)
        try:
            self.store.prepare_dirs(paths)
            crash_point("create:after-dir")
            prepared = self.rootfs.prepare(
                definition.id, definition.image_ref, definition.config.decryption, paths.bundle
            )
            crash_point("create:after-rootfs")
            # The spec is written now so that what cannot run is refused at create; start
            # rewrites it with the network attachment it gets then.
            attachment = (
                NetworkAttachment.host()
                if definition.config.network_mode is NetworkMode.HOST
                else NetworkAttachment.netns(layout.netns_path(definition.id))
            )
            self._write_spec(definition, paths, prepared.path, prepared.image, attachment, None)
            crash_point("create:after-bundle")
            self._save(entry, state=ContainerState(Status.CREATED))
        except BaseException:
            with contextlib.suppress(OcirtError, OSError):
                self.rootfs.release(definition.id, paths.bundle)
            with contextlib.suppress(OSError):
                self.store.remove(definition.id, definition.config.log.root_dir)
            raise

    def _write_spec(
        self,
        definition: ContainerDefinition,
        paths: ContainerPaths,
        rootfs: Path,
        image: ImageConfig,
        attachment: NetworkAttachment,
        attached: Attached | None,
    ) -> None:
        config = definition.config
        devices = {d.path_on_host: stat_device(d.path_on_host) for d in config.devices}
        bundle_paths = BundlePaths(
            rootfs=str(rootfs),
            hosts=str(attached.hosts) if attached and attached.hosts else None,
            resolv_conf=str(attached.resolv_conf) if attached and attached.resolv_conf else None,
            hostname=str(attached.hostname) if attached and attached.hostname else None,
            cgroups_path=layout.cgroups_path(definition.id, self.settings.cgroup_parent),
        )
        spec = build_spec(
            definition,
            image=image,
            user=image_user(str(rootfs), image.user),
            host=self.host,
            network=attachment,
            paths=bundle_paths,
            devices=devices,
        )
        # Rebuilt at every start: atomic, but not worth an fsync. Compact, because json's
        # C encoder only serves calls without an indent (the pure-Python one took ~1 ms).
        write_atomic(
            paths.spec, json.dumps(spec, separators=(",", ":")), durability=Durability.CRASH
        )

    # ------------------------------------------------------------------ start

    def start(self, container_id: str) -> ContainerView:
        with self._operate(container_id, Operation.START) as entry:
            self._cancel_timer(entry)
            # A manual start resets the counter and the manual-stop mark (Kanto §7).
            entry.stored = replace(
                entry.stored,
                runtime=replace(entry.stored.runtime, restart_count=0, manually_stopped=False),
            )
            entry.backoff = 0.0
            self._start(entry)
            return entry.view()

    def _start(self, entry: _Entry) -> None:
        """Run the container; on failure it ends STOPPED with the error (Kanto)."""
        definition = entry.stored.definition
        paths = self._paths(definition)
        try:
            self._forget_runtime(entry)
            self._fresh_monitor_dir(paths)
            entry.exited.clear()
            prepared = self.rootfs.activate(
                definition.id, definition.image_ref, definition.config.decryption, paths.bundle
            )
            attached = self.network.attach(definition.id, definition.config, paths.root)
            self._write_spec(
                definition, paths, prepared.path, prepared.image, attached.attachment, attached
            )
            handle = monitor.launch(self._monitor_options(definition, paths))
            crash_point("start:after-run")
            write_atomic(
                paths.monitor / HANDLE_FILE,
                f'{{"monitorPid":{handle.monitor_pid},"pid":{handle.container_pid}}}\n',
                # Needed after a manager crash, which keeps the page cache; after a power
                # cut the container is gone anyway.
                durability=Durability.CRASH,
            )
            crash_point("start:after-handle")
        except (OcirtError, OSError) as exc:
            message = exc.message if isinstance(exc, OcirtError) else str(exc)
            self._release_runtime(entry)
            self._save(
                entry,
                state=replace(
                    entry.state,
                    status=Status.STOPPED,
                    pid=-1,
                    error=message,
                    finished_at=rules.rfc3339nano(),
                ),
            )
            self._emit(EventKind.STATE, entry.view())
            if isinstance(exc, OcirtError):
                raise
            raise OcirtError(message) from exc
        entry.run_started = time.monotonic()
        self._save(
            entry,
            state=ContainerState(
                status=Status.RUNNING,
                pid=handle.container_pid,
                started_at=rules.rfc3339nano(),
            ),
            started_successfully_before=True,
            # Whole but not fsynced into the directory: a kill -9 keeps the page cache,
            # and a power cut that loses the rename also ended the run, so the record
            # from before this start (still whole) is what recovery finds: as if the
            # power had failed just before the start. The definition is never at risk.
            durability=Durability.CONTENT,
        )
        self._emit(EventKind.STATE, entry.view())

    def _monitor_options(
        self, definition: ContainerDefinition, paths: ContainerPaths
    ) -> monitor.MonitorOptions:
        log = definition.config.log
        json_file = log.driver is LogDriver.JSON_FILE
        return monitor.MonitorOptions(
            container_id=definition.id,
            bundle=paths.bundle,
            state_dir=paths.monitor,
            runtime_root=self.settings.runc_root,
            runtime=self.settings.runtime,
            log=monitor.LogOptions(
                path=paths.log if json_file else None,
                driver=log.driver,
                max_size=parse_size(log.max_size) if json_file and log.max_size else -1,
                max_files=max(log.max_files, 1),
                mode=log.mode,
                max_buffer=(
                    parse_size(log.max_buffer_size)
                    if log.mode is LogMode.NON_BLOCKING and log.max_buffer_size
                    else 1_000_000
                ),
            ),
            tty=definition.config.tty,
            open_stdin=definition.config.open_stdin,
            notify_socket=self.settings.notify_socket,
            start=True,
        )

    # ------------------------------------------------------------------ stop

    def stop(self, container_id: str, options: StopOptions | None = None) -> ContainerView:
        """`stop` / `stopWithOptions` (decision 11: a plain stop ends in SIGKILL)."""
        opts = options or StopOptions(timeout=self.settings.stop_timeout)
        with self._operate(container_id, Operation.STOP) as entry:
            plan = rules.plan_stop(opts)
            self._stop(entry, plan, manual=True)
            return entry.view()

    def _stop(self, entry: _Entry, plan: rules.StopPlan, *, manual: bool) -> None:
        previous = entry.stored.runtime.manually_stopped
        self._cancel_timer(entry)
        if manual:
            self._save(entry, manually_stopped=True)
        self._signal(entry, plan.signal)
        record = self._wait_exit(entry, plan.timeout)
        if record is None:
            if not plan.force:
                if manual:
                    self._save(entry, manually_stopped=previous)
                raise rules.stop_timed_out(entry.id, plan.signal)
            self._signal(entry, "SIGKILL")
            record = self._wait_exit(entry, KILL_WAIT)
        self._finish_run(entry, record, Status.STOPPED)

    def _signal(self, entry: _Entry, signal: str) -> None:
        try:
            self.runc.kill(entry.id, signal)
        except NotFound:
            return
        except RuncError as exc:
            # The container may have exited between the check and the signal.
            if "not running" in exc.message or "stopped" in exc.message:
                return
            raise
        if entry.state.status is Status.PAUSED:
            # A frozen process cannot act on the signal; Docker thaws it too. runc may
            # already see a killed container as no longer paused.
            with contextlib.suppress(OcirtError):
                self.runc.resume(entry.id)

    def _wait_exit(self, entry: _Entry, timeout: float) -> rules.Exit | None:
        paths = self._paths(entry.stored.definition)
        deadline = time.monotonic() + timeout
        while True:
            record = self._read_exit(paths)
            if record is not None:
                return record
            if not self._monitor_alive(paths):
                # The monitor writes its record before it ends; read once more for the
                # case where both happened since the first look.
                return self._read_exit(paths) or rules.Exit.lost()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # A notice (possibly a late one of an earlier run) wakes us; the record decides.
            if entry.exited.wait(min(remaining, _EXIT_POLL)):
                entry.exited.clear()

    # ------------------------------------------------------------------ pause / resume

    def pause(self, container_id: str) -> ContainerView:
        with self._operate(container_id, Operation.PAUSE) as entry:
            self.runc.pause(entry.id)
            self._save(entry, state=replace(entry.state, status=Status.PAUSED))
            self._emit(EventKind.STATE, entry.view())
            return entry.view()

    def resume(self, container_id: str) -> ContainerView:
        with self._operate(container_id, Operation.RESUME) as entry:
            self.runc.resume(entry.id)
            self._save(entry, state=replace(entry.state, status=Status.RUNNING))
            self._emit(EventKind.STATE, entry.view())
            return entry.view()

    # ------------------------------------------------------------------ rename / update

    def rename(self, container_id: str, name: str) -> ContainerView:
        entry = self._entry(container_id)
        with entry.lock:
            self._live(entry)
            check_name(name)
            if not name or name == entry.stored.definition.name:
                return entry.view()
            check(entry.id, entry.state.status, Operation.RENAME)
            with self._registry:
                check_unique_name(name, self._names(exclude=entry.id))
                definition = replace(entry.stored.definition, name=name)
                self._save(entry, definition=definition)
            self._emit(EventKind.RENAMED, entry.view())
            return entry.view()

    def update(self, container_id: str, update: ContainerUpdate) -> ContainerView:
        with self._operate(container_id, Operation.UPDATE) as entry:
            definition = apply_update(entry.stored.definition, update)
            if update.resources is not None and entry.state.status.is_active:
                # Kanto applies resources live to a running container.
                self.runc.update_memory(entry.id, _memory_update(definition.config))
            self._save(entry, definition=definition)
            self._emit(EventKind.UPDATED, entry.view())
            return entry.view()

    # ------------------------------------------------------------------ remove

    def remove(self, container_id: str, force: bool = False) -> None:
        operation = Operation.REMOVE_FORCE if force else Operation.REMOVE
        with self._operate(container_id, operation) as entry:
            self._cancel_timer(entry)
            if entry.state.status.is_active:
                # As `docker rm -f`: SIGKILL at once, no grace period.
                self._save(entry, manually_stopped=True)
                self._signal(entry, "SIGKILL")
                record = self._wait_exit(entry, KILL_WAIT)
                self._finish_run(entry, record, Status.STOPPED, emit=False)
            self._save(entry, state=replace(entry.state, status=Status.DEAD, pid=-1))
            view = entry.view()
            self._emit(EventKind.STATE, view)
            crash_point("remove:after-dead")
            self._destroy(entry.stored)
            entry.removed = True
            with self._registry:
                self._entries.pop(entry.id, None)
        self._emit(EventKind.REMOVED, view)

    def _destroy(self, stored: StoredContainer) -> None:
        """Delete everything of a DEAD container; safe to repeat after a crash."""
        definition = stored.definition
        paths = self._paths(definition)
        self._delete_runc(definition.id)
        crash_point("remove:after-delete")
        with contextlib.suppress(OcirtError):
            self.network.detach(definition.id)
        self.rootfs.release(definition.id, paths.bundle)
        self.store.remove(definition.id, definition.config.log.root_dir)

    # ------------------------------------------------------------------ exits

    def _on_notice(self, container_id: str) -> None:
        """Called on the listener thread: wake a waiting stop, then apply the exit."""
        with self._registry:
            entry = self._entries.get(container_id)
        if entry is None:
            return
        entry.exited.set()
        if not self._closed:
            self._submit(self._handle_exit, entry)

    def _sweep(self) -> None:
        """Look at every running container: catches a lost notice (`ocirt.manager.exits`)."""
        with self._registry:
            active = [e for e in self._entries.values() if e.state.status.is_active]
        for entry in active:
            self._submit(self._handle_exit, entry)

    def _handle_exit(self, entry: _Entry) -> None:
        with entry.lock:
            if not entry.removed:
                self._check_exit(entry)

    def _check_exit(self, entry: _Entry) -> None:
        """If the container has exited, apply the exit (state, clean-up, restart policy).

        Reads the monitor's exit record; a dead monitor without a record lost the exit.
        """
        if not entry.state.status.is_active:
            return
        paths = self._paths(entry.stored.definition)
        record = self._read_exit(paths)
        if record is None:
            if self._monitor_alive(paths):
                return
            record = self._read_exit(paths) or rules.Exit.lost()
        self._finish_run(entry, record, Status.EXITED)
        self._apply_policy(entry)

    def _read_exit(self, paths: ContainerPaths) -> rules.Exit | None:
        try:
            record = monitor.read_exit_record(paths.monitor)
        except OcirtError as exc:
            return rules.Exit.lost(exc.message)
        if record is None:
            return None
        return rules.Exit.recorded(record.exit_code, record.finished_at, record.oom_killed)

    def _finish_run(
        self,
        entry: _Entry,
        record: rules.Exit | None,
        status: Status,
        *,
        emit: bool = True,
    ) -> None:
        """Record the end of a run and release what it held."""
        record = record or rules.Exit.lost()
        self._release_runtime(entry)
        self._save(
            entry,
            state=ContainerState(
                status=status,
                pid=-1,
                exit_code=record.exit_code,
                error=record.error,
                started_at=entry.state.started_at,
                finished_at=record.finished_at,
                oom_killed=record.oom_killed,
            ),
        )
        if emit:
            self._emit(EventKind.STATE, entry.view())

    def _apply_policy(self, entry: _Entry) -> None:
        runtime = entry.stored.runtime
        restart_policy = entry.stored.definition.config.restart_policy
        if self._closed or not policy.should_restart(
            restart_policy, runtime.state.exit_code, runtime.restart_count, runtime.manually_stopped
        ):
            return
        ran_for = time.monotonic() - entry.run_started if entry.run_started else 0.0
        entry.backoff = policy.next_backoff(entry.backoff, ran_for, restart_policy)
        self._schedule_restart(entry, entry.backoff)

    def _schedule_restart(self, entry: _Entry, delay: float) -> None:
        self._cancel_timer(entry)
        entry.timer_token += 1
        token = entry.timer_token
        timer = threading.Timer(delay, lambda: self._submit(self._restart, entry, token))
        timer.daemon = True
        entry.timer = timer
        timer.start()

    def _restart(self, entry: _Entry, token: int) -> None:
        with entry.lock:
            if entry.removed or self._closed or token != entry.timer_token:
                return
            entry.timer = None
            if entry.state.status is not Status.EXITED:
                return
            runtime = entry.stored.runtime
            self._save(entry, restart_count=runtime.restart_count + 1)
            with contextlib.suppress(OcirtError):
                self._start(entry)

    def _cancel_timer(self, entry: _Entry) -> None:
        entry.timer_token += 1
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None

    # ------------------------------------------------------------------ recovery

    def recover(self) -> None:
        """Reconcile the store with runc and the monitors, after a clean stop or a crash."""
        from ocirt.manager.recovery import recover

        recover(self)
        self._listener.start()

    # ------------------------------------------------------------------ close

    def close(self, stop_containers: bool = False) -> None:
        """Stop serving. Containers keep running unless asked (decision 10)."""
        if stop_containers:
            with self._registry:
                entries = list(self._entries.values())
            plan = rules.StopPlan("SIGTERM", self.settings.stop_timeout, force=True)
            for entry in entries:
                with entry.lock:
                    if entry.removed or not entry.state.status.is_active:
                        continue
                    # Not a manual stop: unless-stopped containers return at next start.
                    with contextlib.suppress(OcirtError):
                        self._stop(entry, plan, manual=False)
        with self._registry:
            self._closed = True
            entries = list(self._entries.values())
        for entry in entries:
            with entry.lock:
                self._cancel_timer(entry)
        self._listener.close()
        self._workers.shutdown(wait=True)
        self._events.close()

    # ------------------------------------------------------------------ helpers

    def _entry(self, container_id: str) -> _Entry:
        with self._registry:
            entry = self._entries.get(container_id)
        if entry is None:
            raise NotFound(f"no such container with id = {container_id} exists")
        return entry

    @contextlib.contextmanager
    def _operate(self, container_id: str, operation: Operation) -> Iterator[_Entry]:
        """The container's entry, locked for the whole operation, with any exit applied
        and `operation` allowed in its state (else Kanto's refusal)."""
        entry = self._entry(container_id)
        with entry.lock:
            self._live(entry)
            self._check_exit(entry)
            check(entry.id, entry.state.status, operation)
            yield entry

    def _live(self, entry: _Entry) -> None:
        if entry.removed:
            raise NotFound(f"no such container with id = {entry.id} exists")
        self._check_open()

    def _check_open(self) -> None:
        if self._closed:
            raise OcirtError("the container manager is shutting down")

    def _names(self, exclude: str | None = None) -> Sequence[str]:
        return [
            e.stored.definition.name
            for cid, e in self._entries.items()
            if cid != exclude and not e.removed
        ]

    def _paths(self, definition: ContainerDefinition) -> ContainerPaths:
        return self.store.paths(definition.id, definition.config.log.root_dir)

    def _save(
        self,
        entry: _Entry,
        *,
        definition: ContainerDefinition | None = None,
        state: ContainerState | None = None,
        durability: Durability = Durability.FULL,
        **runtime_changes: object,
    ) -> None:
        runtime = entry.stored.runtime
        if state is not None:
            runtime = replace(runtime, state=state)
        if runtime_changes:
            runtime = replace(runtime, **runtime_changes)  # type: ignore[arg-type]
        stored = replace(
            entry.stored, definition=definition or entry.stored.definition, runtime=runtime
        )
        self.store.save(stored, durability)
        entry.stored = stored

    def _emit(self, kind: EventKind, view: ContainerView) -> None:
        self._events.publish(Event(kind, view))

    def _submit(self, fn: Callable[..., None], *args: object) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception:
                _log.exception("background container task failed")

        with contextlib.suppress(RuntimeError):
            self._workers.submit(run)

    def _monitor_alive(self, paths: ContainerPaths) -> bool:
        pid = read_monitor_pid(paths)
        return pid is not None and monitor.is_alive(pid)

    def _delete_runc(self, container_id: str) -> None:
        with contextlib.suppress(NotFound):
            self.runc.delete(container_id, force=True)

    def _release_runtime(self, entry: _Entry) -> None:
        """runc delete and network detach after a run; failures are logged, not raised."""
        try:
            self._delete_runc(entry.id)
        except OcirtError as exc:
            _log.warning("runc delete of %s failed: %s", entry.id, exc.message)
        try:
            self.network.detach(entry.id)
        except OcirtError as exc:
            _log.warning("network detach of %s failed: %s", entry.id, exc.message)

    @staticmethod
    def _fresh_monitor_dir(paths: ContainerPaths) -> None:
        """An empty monitor state dir for the next run; the last run's files (exit record,
        handle) must not be taken for the new run's."""
        try:
            with os.scandir(paths.monitor) as entries:
                if next(entries, None) is None:
                    return  # empty, as create leaves it: nothing to remove
        except FileNotFoundError:
            pass
        remove_tree(paths.monitor)
        paths.monitor.mkdir(parents=True, exist_ok=True)

    def _forget_runtime(self, entry: _Entry) -> None:
        """Delete a runc container left from an earlier run before a new `runc run`."""
        # runc keeps a directory per container in its root; none means nothing to delete,
        # which saves a runc run on every start.
        if (self.settings.runc_root / entry.id).exists():
            self._delete_runc(entry.id)

    def runc_status(self, container_id: str) -> RuncStatus | None:
        try:
            return self.runc.state(container_id).status
        except NotFound:
            return None


def read_monitor_pid(paths: ContainerPaths) -> int | None:
    try:
        raw = json.loads((paths.monitor / HANDLE_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    pid = raw.get("monitorPid") if isinstance(raw, dict) else None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def _memory_update(config: ContainerConfig) -> MemoryUpdate:
    """The live `runc update` for the config's resources; "" means unlimited (-1)."""
    res = config.resources

    def size(text: str) -> int:
        return -1 if not text or text == "-1" else parse_size(text)

    return MemoryUpdate(
        limit=size(res.memory),
        reservation=size(res.memory_reservation),
        swap=size(res.memory_swap),
    )
