"""An in-memory manager for the front-end tests: Kanto's state rules, no containers.

It uses the real rules where it can: `ocirt.config.ditto.new_definition` (defaults and
validation), the name checks, and `ocirt.config.state` for what each state allows (so
refusals carry Kanto's messages). It emits events in the manager's order, synchronously.
`tests/contract/test_container_manager.py` holds it to the real manager.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from ocirt.config.ditto import ContainerUpdate, CreateRequest, apply_update, new_definition
from ocirt.config.ids import check_container_id
from ocirt.config.model import ContainerConfig, ContainerDefinition, ContainerId
from ocirt.config.state import Operation, Status, check
from ocirt.config.validation import check_name, check_unique_name
from ocirt.errors import InvalidArgument, NotFound, OcirtError
from ocirt.manager.types import ContainerState, ContainerView, Event, EventKind, StopOptions


class FakeManager:
    def __init__(self) -> None:
        self.views: dict[str, ContainerView] = {}
        self.calls: list[tuple[object, ...]] = []
        self._subscribers: list[Callable[[Event], None]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.fail_start: Exception | None = None
        self.block: threading.Event | None = None

    def _emit(self, kind: EventKind, view: ContainerView) -> None:
        for callback in list(self._subscribers):
            callback(Event(kind, view))

    def _set(self, view: ContainerView, kind: EventKind = EventKind.STATE) -> None:
        self.views[view.id] = view
        self._emit(kind, view)

    def _state(self, cid: ContainerId, status: Status, pid: int = -1) -> None:
        view = self.get(cid)
        self._set(replace(view, state=replace(view.state, status=status, pid=pid)))

    def create(
        self,
        image_ref: str,
        config: ContainerConfig,
        name: str | None = None,
        *,
        container_id: str | None = None,
        start: bool = False,
    ) -> ContainerView:
        self.calls.append(("create", image_ref, config, name))
        if container_id is None:
            cid = ContainerId(f"c{next(self._ids)}")
        else:
            cid = ContainerId(check_container_id(container_id))
            if cid in self.views:
                raise InvalidArgument(f"container with id = {cid} already exists")
        # The real definition rules: defaults (host name ...), validation, unique names.
        request = CreateRequest(image_ref=image_ref, start=False, name=name, config=config)
        definition = new_definition(cid, request)
        check_unique_name(definition.name, [v.name for v in self.views.values()])
        view = ContainerView(
            id=cid,
            name=definition.name,
            image_ref=image_ref,
            config=definition.config,
            created_at="2024-05-01T10:00:00.123456789Z",
            state=ContainerState(status=Status.CREATED),
        )
        self.views[cid] = view
        self._emit(EventKind.CREATED, view)
        self._emit(EventKind.STATE, view)
        if not start:
            return view
        # The manager's rule: the create stands when the start fails, its state says why.
        try:
            self.start(cid)
        except OcirtError as exc:
            stopped = replace(view.state, status=Status.STOPPED, error=exc.message)
            self._set(replace(self.get(cid), state=stopped))
        return self.get(cid)

    def start(self, cid: ContainerId) -> None:
        self.calls.append(("start", cid))
        if self.block is not None:
            self.block.wait(10)
        check(cid, self.get(cid).state.status, Operation.START)
        if self.fail_start is not None:
            raise self.fail_start
        self._state(cid, Status.RUNNING, pid=4242)

    def stop(self, cid: ContainerId, options: StopOptions) -> None:
        self.calls.append(("stop", cid, options))
        check(cid, self.get(cid).state.status, Operation.STOP)
        self._state(cid, Status.STOPPED)

    def pause(self, cid: ContainerId) -> None:
        self.calls.append(("pause", cid))
        check(cid, self.get(cid).state.status, Operation.PAUSE)
        self._state(cid, Status.PAUSED, pid=4242)

    def resume(self, cid: ContainerId) -> None:
        self.calls.append(("resume", cid))
        check(cid, self.get(cid).state.status, Operation.RESUME)
        self._state(cid, Status.RUNNING, pid=4242)

    def rename(self, cid: ContainerId, name: str) -> None:
        self.calls.append(("rename", cid, name))
        view = self.get(cid)
        check_name(name)
        if not name or name == view.name:
            return
        check(cid, view.state.status, Operation.RENAME)
        check_unique_name(name, [v.name for v in self.views.values() if v.id != cid])
        self._set(replace(view, name=name), EventKind.RENAMED)

    def update(self, cid: ContainerId, update: ContainerUpdate) -> None:
        self.calls.append(("update", cid, update))
        view = self.get(cid)
        definition = ContainerDefinition(view.id, view.name, view.image_ref, view.config)
        self._set(replace(view, config=apply_update(definition, update).config), EventKind.UPDATED)

    def remove(self, cid: ContainerId, force: bool = False) -> None:
        self.calls.append(("remove", cid, force))
        view = self.get(cid)
        check(cid, view.state.status, Operation.REMOVE_FORCE if force else Operation.REMOVE)
        dead = replace(view, state=replace(view.state, status=Status.DEAD, pid=-1))
        self._emit(EventKind.STATE, dead)
        del self.views[cid]
        self._emit(EventKind.REMOVED, dead)

    def get(self, cid: ContainerId) -> ContainerView:
        try:
            return self.views[cid]
        except KeyError:
            raise NotFound(f"no such container with id = {cid} exists") from None

    def list(self) -> Sequence[ContainerView]:
        return list(self.views.values())

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)
