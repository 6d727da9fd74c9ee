"""The container manager: Kanto's container use cases. Does I/O only through its ports
(`ocirt.manager.ports`: rootfs, network, runtime, store).

Concurrency, one model: plain threads. The registry (`ocirt.manager.registry`) holds one
slot per container with its own lock, held for a whole operation, so operations on one
container are serialised and operations on different containers run in parallel. Exits
and restart timers are the supervisor's (`ocirt.manager.supervisor`), handled on its
worker pool under the container's lock. Events go to subscribers through one dispatcher
thread (`ocirt.manager.events`), so no callback runs under a lock. The pure rules (state
table, restart policy, stop options) know nothing of this.

Lifecycle (docs/kanto-compatibility.md §2, §7): `create` persists the definition and builds the spec
(so that a spec that cannot be built is refused at once) but runs nothing and writes no
spec; `start` activates the rootfs, attaches the network, writes the spec with that
attachment and the current config (`ocirt.manager.bundle`), and has the runtime run the
container (the monitor's `runc run -d`). A start cut short by a crash before RUNNING is
persisted counts as never having happened: recovery force-deletes what it made.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from ocirt.atomic import Durability, make_private_dir
from ocirt.config.ditto import ContainerUpdate, CreateRequest, apply_update, new_definition
from ocirt.config.ids import check_container_id
from ocirt.config.model import ContainerConfig, ContainerDefinition, ContainerId, LogDriver
from ocirt.config.state import Operation, Status, check
from ocirt.config.validation import check_name, check_unique_name
from ocirt.errors import InvalidArgument, OcirtError
from ocirt.logs.jsonline import LogEntry
from ocirt.manager import bundle, rules
from ocirt.manager.events import EventBus, Subscriber
from ocirt.manager.faults import crash_point
from ocirt.manager.ports import (
    Attached,
    ContainerStore,
    NetworkProvider,
    RootfsProvider,
    Runtime,
)
from ocirt.manager.recovery import recover
from ocirt.manager.registry import Registry, Slot
from ocirt.manager.supervisor import Supervisor
from ocirt.manager.types import (
    DEFAULT_STOP_TIMEOUT,
    ContainerState,
    ContainerView,
    Event,
    EventKind,
    StopOptions,
)
from ocirt.spec import layout
from ocirt.spec.facts import HostFacts, ImageConfig
from ocirt.store.containers import ContainerPaths, StoredContainer
from ocirt.store.record import RuntimeRecord

_log = logging.getLogger(__name__)

# After SIGKILL a container is gone within milliseconds; this bounds a stuck kernel.
KILL_WAIT = 10.0


@dataclass(frozen=True, slots=True)
class ManagerSettings:
    """Kanto's `manager` settings (home_dir, exec_root_dir, default stop timeout)."""

    home_dir: Path
    exec_root: Path
    runtime: str = "runc"
    runtime_root: Path | None = None
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    # Containers' cgroups are <parent>/<id>, relative to the manager's own cgroup.
    cgroup_parent: str = layout.DEFAULT_CGROUP_PARENT

    @property
    def runc_root(self) -> Path:
        return self.runtime_root or self.exec_root / "runc"

    @property
    def notify_socket(self) -> Path:
        return self.exec_root / "notify.sock"


class _Settling:
    """`ContainerStore.settle` in a thread of its own; `done` waits for it."""

    def __init__(self, store: ContainerStore, paths: ContainerPaths) -> None:
        self._ok = False
        self._thread = threading.Thread(
            target=self._run, args=(store, paths), name="ocirt-settle", daemon=True
        )
        self._thread.start()

    def _run(self, store: ContainerStore, paths: ContainerPaths) -> None:
        try:
            store.settle(paths)
        except OSError as exc:
            _log.warning("syncing the directories of %s: %s", paths.root.name, exc)
            return
        self._ok = True

    def done(self) -> bool:
        """Wait for the fsyncs; whether they all succeeded."""
        self._thread.join()
        return self._ok


class Manager:
    """The use cases. Construct, call `recover()` once, then serve; `close()` at the end."""

    def __init__(
        self,
        settings: ManagerSettings,
        rootfs: RootfsProvider,
        network: NetworkProvider,
        host: HostFacts,
        *,
        runtime: Runtime,
        store: ContainerStore,
    ) -> None:
        self.settings = settings
        self.rootfs = rootfs
        self.network = network
        self.host = host
        self.runtime = runtime
        self.store = store
        self.registry = Registry(store)
        self._events = EventBus()
        # Root's alone: the exec root holds the API socket, runc's state and notices;
        # the home the containers' definitions (with their secrets).
        make_private_dir(settings.exec_root)
        self.supervisor = Supervisor(
            self.registry, runtime, network, self._emit, self._start, settings.notify_socket
        )

    # ------------------------------------------------------------------ queries

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._events.subscribe(callback)

    def get(self, container_id: str) -> ContainerView:
        slot = self.registry.get(container_id)
        with slot.lock:
            self.supervisor.check_exit(slot)
            return slot.view()

    def list(self) -> Sequence[ContainerView]:
        """Every container as the manager knows it, without a file read or a lock per
        container: exits are applied as their notices arrive and by the supervisor's
        sweep (`ocirt.manager.exits`), and a slot's record is replaced whole, so reading
        it unlocked gives one consistent view, not one held up by a long operation (a
        create pulling its image). One still being created is not listed yet, as it would
        not be had we waited for a create that fails. `get` still looks at the
        container's exit record first."""
        views = []
        for slot in self.registry.all():
            view = slot.view()
            if not slot.removed and view.state.status is not Status.CREATING:
                views.append(view)
        return sorted(views, key=lambda v: v.created_at)

    def log_path(self, container_id: str) -> Path:
        slot = self.registry.get(container_id)
        return self.registry.paths(slot.stored.definition).log

    def logs(
        self,
        container_id: str,
        tail: int | None = None,
        since: datetime | None = None,
        follow: bool = False,
    ) -> Iterator[LogEntry]:
        """The container's json-file log entries (see `ocirt.logs.reader`)."""
        from ocirt.logs import reader

        slot = self.registry.get(container_id)
        config = slot.stored.definition.config
        if config.log.driver is LogDriver.NONE:
            return iter(())
        path = self.registry.paths(slot.stored.definition).log

        def finished() -> bool:
            with slot.lock:
                if not slot.removed:
                    self.supervisor.check_exit(slot)
                return slot.removed or not slot.state.status.is_active

        return reader.read_logs(path, tail=tail, since=since, follow=follow, stop=finished)

    # ------------------------------------------------------------------ create

    def create(
        self,
        image_ref: str,
        config: ContainerConfig,
        name: str | None = None,
        *,
        container_id: str | None = None,
        start: bool = False,
    ) -> ContainerView:
        """A new container; `container_id` is a requested id (a deployment descriptor's or
        a SoftwareUpdatable module's `container_id`, as Kanto honours it), else a UUID.

        With `start` (Kanto's createWithConfig with `start: true`), the container is
        started too, and the create stands even when the start fails: the container is
        then STOPPED with the start's error in its state, and the answer is the container,
        not an error (features_container_factory.go)."""
        if container_id is None:
            cid = ContainerId(str(uuid.uuid4()))
        else:
            cid = ContainerId(check_container_id(container_id))
        # The one way to a definition (`ocirt spec` takes it too): defaults, validation.
        request = CreateRequest(image_ref=image_ref, start=False, name=name, config=config)
        definition = new_definition(cid, request)
        runtime = RuntimeRecord(state=ContainerState(Status.CREATING), created=rules.rfc3339nano())
        slot = Slot(StoredContainer(definition, runtime))
        with slot.lock:
            with self.registry.lock:
                self.registry.check_open()
                if self.registry.taken(cid):
                    raise InvalidArgument(f"container with id = {cid} already exists")
                check_unique_name(definition.name, self.registry.names())
                self.registry.add(slot)
            try:
                self._create(slot, answered_after_start=start)
            except BaseException:
                self.registry.discard(slot.id)
                slot.removed = True
                raise
            view = slot.view()
        _log.info("container %s created from image %s", slot.label, image_ref)
        self._emit(EventKind.CREATED, view)
        self._emit(EventKind.STATE, view)
        if not start:
            return view
        try:
            self.start(cid)
        except OcirtError:
            pass  # the state shows why, and `_start` logged it once
        except Exception:
            _log.exception("container %s was created but failed to start", slot.label)
        finally:
            # The start's first save settled the create; one that saved nothing (it was
            # refused before) leaves that to here, before the answer.
            with slot.lock:
                if slot.unsettled and not slot.removed:
                    try:
                        self.registry.save(slot)  # a full disk: written once there is space
                    except (OcirtError, OSError) as exc:
                        _log.error("container %s: cannot sync its record: %s", slot.label, exc)
        return self.get(cid)

    def _create(self, slot: Slot, *, answered_after_start: bool = False) -> None:
        """Pull, mount, check the spec and save the record. `answered_after_start`: the
        record is whole on disk (fsynced) but its directories are not (`Slot.unsettled`)
        until the start fsyncs them beside runc (`_settle_meanwhile`), or a later save
        does; the answer waits for either, and no directory fsync precedes the launch."""
        definition = slot.stored.definition
        paths = self.registry.paths(definition)
        try:
            # A network mode this daemon cannot give is refused before any pull.
            self.network.planned(definition.id, definition.config)
            self.store.prepare_dirs(paths, durable=not answered_after_start)
            crash_point("create:after-dir")
            prepared = self.rootfs.prepare(
                definition.id, definition.image_ref, definition.config.decryption, paths.bundle
            )
            crash_point("create:after-rootfs")
            # Built (not written) now so that what cannot run is refused at create; start
            # writes it with the network attachment it gets then.
            self._spec(definition, prepared.path, prepared.image, None)
            crash_point("create:after-bundle")
            self.registry.save(
                slot,
                state=ContainerState(Status.CREATED),
                required=True,
                durability=Durability.CONTENT if answered_after_start else Durability.FULL,
            )
            slot.unsettled = answered_after_start
        except BaseException:
            with contextlib.suppress(OcirtError, OSError):
                self.rootfs.release(definition.id, paths.bundle)
            with contextlib.suppress(OSError):
                self.store.remove(definition.id, definition.config.log.root_dir)
            raise

    def _spec(
        self,
        definition: ContainerDefinition,
        rootfs: Path,
        image: ImageConfig,
        attached: Attached | None,
    ) -> dict[str, object]:
        """The spec; without an attachment (at create), a check of what start will write."""
        if attached is None:
            attached = Attached(self.network.planned(definition.id, definition.config))
        paths = bundle.bundle_paths(
            definition.id,
            rootfs,
            hosts=attached.hosts,
            resolv_conf=attached.resolv_conf,
            hostname=attached.hostname,
            cgroup_parent=self.settings.cgroup_parent,
        )
        return bundle.make_spec(
            definition, image=image, host=self.host, network=attached.attachment, paths=paths
        )

    # ------------------------------------------------------------------ start

    def start(self, container_id: str) -> ContainerView:
        with self._operate(container_id, Operation.START) as slot:
            self.supervisor.cancel_timer(slot)
            # A manual start resets the counter and the manual-stop mark (Kanto §7).
            slot.stored = replace(
                slot.stored,
                runtime=replace(slot.stored.runtime, restart_count=0, manually_stopped=False),
            )
            slot.backoff = 0.0
            self._start(slot)
            return slot.view()

    def _start(self, slot: Slot) -> None:
        """Run the container; on failure it ends STOPPED with the error (Kanto)."""
        definition = slot.stored.definition
        paths = self.registry.paths(definition)
        try:
            self.runtime.forget(slot.id, paths.monitor)
            slot.exited.clear()
            prepared = self.rootfs.activate(
                definition.id, definition.image_ref, definition.config.decryption, paths.bundle
            )
            attached = self.network.attach(definition.id, definition.config, paths.root)
            spec = self._spec(definition, prepared.path, prepared.image, attached)
            bundle.write_spec(paths.spec, spec)
            settling = self._settle_meanwhile(slot, paths)
            try:
                handle = self.runtime.launch(definition, paths.bundle, paths.monitor, paths.log)
            finally:
                if settling is not None and settling.done():
                    slot.unsettled = False
            crash_point("start:after-run")
            self.runtime.save_handle(handle)
            crash_point("start:after-handle")
        except (OcirtError, OSError) as exc:
            message = exc.message if isinstance(exc, OcirtError) else str(exc)
            # The one log line of a failed start (the front ends do not repeat it).
            _log.error("container %s failed to start: %s", slot.label, message)
            self.supervisor.release_runtime(slot.id)
            self.registry.save(
                slot,
                state=replace(
                    slot.state,
                    status=Status.STOPPED,
                    pid=-1,
                    error=message,
                    finished_at=rules.rfc3339nano(),
                ),
            )
            self._emit(EventKind.STATE, slot.view())
            if isinstance(exc, OcirtError):
                raise
            raise OcirtError(message) from exc
        slot.run_started = time.monotonic()
        self.registry.save(
            slot,
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
        _log.info("container %s started (pid %d)", slot.label, handle.container_pid)
        self._emit(EventKind.STATE, slot.view())

    def _settle_meanwhile(self, slot: Slot, paths: ContainerPaths) -> _Settling | None:
        """A create+start's directory fsyncs, in a thread while runc starts the container
        (they wait on the disk, not the CPU); what did not finish by then the next save
        does (`Slot.unsettled`)."""
        if not slot.unsettled:
            return None
        return _Settling(self.store, paths)

    # ------------------------------------------------------------------ stop

    def stop(self, container_id: str, options: StopOptions | None = None) -> ContainerView:
        """`stop` / `stopWithOptions`; None is a plain stop (`StopOptions`,
        docs/kanto-compatibility.md decision 11)."""
        with self._operate(container_id, Operation.STOP) as slot:
            plan = rules.plan_stop(options or StopOptions(), self.settings.stop_timeout)
            self._stop(slot, plan, manual=True)
            return slot.view()

    def _stop(self, slot: Slot, plan: rules.StopPlan, *, manual: bool) -> None:
        previous = slot.stored.runtime.manually_stopped
        self.supervisor.cancel_timer(slot)
        if manual:
            self.registry.save(slot, manually_stopped=True)
        self._signal(slot, plan.signal)
        record = self.supervisor.wait_exit(slot, plan.timeout)
        if record is None:
            if not plan.force:
                if manual:
                    self.registry.save(slot, manually_stopped=previous)
                raise rules.stop_timed_out(slot.id, plan.signal)
            self._signal(slot, "SIGKILL")
            record = self.supervisor.wait_exit(slot, KILL_WAIT)
        self.supervisor.finish_run(slot, record, Status.STOPPED)

    def _signal(self, slot: Slot, signal: str) -> None:
        if not self.runtime.kill(slot.id, signal):
            return
        if slot.state.status is Status.PAUSED:
            # A frozen process cannot act on the signal; Docker thaws it too. runc may
            # already see a killed container as no longer paused.
            with contextlib.suppress(OcirtError):
                self.runtime.resume(slot.id)

    # ------------------------------------------------------------------ pause / resume

    def pause(self, container_id: str) -> ContainerView:
        return self._freeze(container_id, Operation.PAUSE, Status.PAUSED, self.runtime.pause)

    def resume(self, container_id: str) -> ContainerView:
        return self._freeze(container_id, Operation.RESUME, Status.RUNNING, self.runtime.resume)

    def _freeze(
        self, container_id: str, operation: Operation, status: Status, verb: Callable[[str], None]
    ) -> ContainerView:
        with self._operate(container_id, operation) as slot:
            verb(slot.id)
            self.registry.save(slot, state=replace(slot.state, status=status))
            _log.info("container %s %s", slot.label, status.name.lower())
            self._emit(EventKind.STATE, slot.view())
            return slot.view()

    # ------------------------------------------------------------------ rename / update

    def rename(self, container_id: str, name: str) -> ContainerView:
        slot = self.registry.get(container_id)
        with slot.lock:
            self.registry.live(slot)
            check_name(name)
            if not name or name == slot.stored.definition.name:
                return slot.view()
            check(slot.id, slot.state.status, Operation.RENAME)
            with self.registry.lock:
                check_unique_name(name, self.registry.names(exclude=slot.id))
                definition = replace(slot.stored.definition, name=name)
                self.registry.save(slot, definition=definition, required=True)
            _log.info("container %s renamed", slot.label)
            self._emit(EventKind.RENAMED, slot.view())
            return slot.view()

    def update(self, container_id: str, update: ContainerUpdate) -> ContainerView:
        with self._operate(container_id, Operation.UPDATE) as slot:
            definition = apply_update(slot.stored.definition, update)
            if update.resources is not None and slot.state.status.is_active:
                # Kanto applies resources live to a running container.
                self.runtime.update_memory(slot.id, definition.config.resources)
            self.registry.save(slot, definition=definition, required=True)
            _log.info("container %s updated", slot.label)
            self._emit(EventKind.UPDATED, slot.view())
            return slot.view()

    # ------------------------------------------------------------------ remove

    def remove(self, container_id: str, force: bool = False) -> None:
        operation = Operation.REMOVE_FORCE if force else Operation.REMOVE
        with self._operate(container_id, operation) as slot:
            self.supervisor.cancel_timer(slot)
            if slot.damage:
                self._remove_damaged(slot)
                view = slot.view()
            elif slot.state.status.is_active:
                # As `docker rm -f`: SIGKILL at once, no grace period.
                self.registry.save(slot, manually_stopped=True)
                self._signal(slot, "SIGKILL")
                record = self.supervisor.wait_exit(slot, KILL_WAIT)
                self.supervisor.finish_run(slot, record, Status.STOPPED, emit=False)
            if not slot.damage:
                self.registry.save(slot, state=replace(slot.state, status=Status.DEAD, pid=-1))
                view = slot.view()
                self._emit(EventKind.STATE, view)
                crash_point("remove:after-dead")
            self.destroy(slot.stored)
            slot.removed = True
            self.registry.discard(slot.id)
            _log.info("container %s removed", slot.label)
        self._emit(EventKind.REMOVED, view)

    def _remove_damaged(self, slot: Slot) -> None:
        """Before a damaged container's directory goes: end whatever of it still runs
        (its monitor then ends too). Its log dir is the default one: a `rootDir` of its
        lost definition cannot be known."""
        _log.warning("removing damaged container %s (%s)", slot.id, slot.damage)
        if self.runtime.kill(slot.id, "SIGKILL"):
            self.supervisor.wait_exit(slot, KILL_WAIT)

    def destroy(self, stored: StoredContainer) -> None:
        """Delete everything of a DEAD container; safe to repeat after a crash."""
        definition = stored.definition
        paths = self.registry.paths(definition)
        self.runtime.delete(definition.id)
        crash_point("remove:after-delete")
        with contextlib.suppress(OcirtError):
            self.network.detach(definition.id)
        self.rootfs.release(definition.id, paths.bundle)
        self.store.remove(definition.id, definition.config.log.root_dir)

    # ------------------------------------------------------------------ recovery / close

    def recover(self) -> None:
        """Reconcile the store with the runtime, after a clean stop or a crash; listen."""
        recover(self.registry, self.supervisor, self.network, self.destroy)
        self.supervisor.listen()

    def close(self, stop_containers: bool = False) -> None:
        """Stop serving. Containers keep running unless asked
        (docs/kanto-compatibility.md decision 10). Once: a second
        close must not take the notify socket of a manager that serves after this one."""
        if self.registry.closed:
            return
        if stop_containers:
            plan = rules.StopPlan("SIGTERM", self.settings.stop_timeout, force=True)
            for slot in self.registry.all():
                with slot.lock:
                    if slot.removed or not slot.state.status.is_active:
                        continue
                    # Not a manual stop: unless-stopped containers return at next start.
                    with contextlib.suppress(OcirtError):
                        self._stop(slot, plan, manual=False)
        # A last try for records a full disk held back (the next start reads them).
        self.registry.write_pending()
        with self.registry.lock:
            self.registry.closed = True
        self.supervisor.close()
        self._events.close()

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _operate(self, container_id: str, operation: Operation) -> Iterator[Slot]:
        with self.registry.operate(container_id, operation, self.supervisor.check_exit) as slot:
            yield slot

    def _emit(self, kind: EventKind, view: ContainerView) -> None:
        self._events.publish(Event(kind, view))
