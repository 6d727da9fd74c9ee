"""The twin side of the Ditto protocol: container features and their updates. No I/O.

`Twin` builds the twin commands for one thing, sent to `e/<tenantId>/<thingId>` with
Kanto's feature shapes (thing_internal.go, generator.go); `TwinTracker` is the one
stateful piece of the front end: it turns manager events into those commands in Kanto's
order, remembering what it last published.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ocirt.config.ditto import to_ditto_config
from ocirt.config.state import Status
from ocirt.manager.types import ContainerState, ContainerView, Event, EventKind
from ocirt.things.protocol import (
    CONTAINER_DEFINITION,
    CONTAINER_FACTORY,
    FACTORY_DEFINITION,
    Outbound,
    ThingId,
    compact_json,
    container_feature_id,
)


def state_value(state: ContainerState) -> dict[str, object]:
    """Kanto's `state`, every member omitempty; so pid -1 shows, pid 0 does not."""
    value: dict[str, object] = {"status": state.status.name}
    if state.pid:
        value["pid"] = state.pid
    if state.error:
        value["error"] = state.error
    if state.exit_code:
        value["exitCode"] = state.exit_code
    if state.started_at:
        value["startedAt"] = state.started_at
    if state.finished_at:
        value["finishedAt"] = state.finished_at
    if state.oom_killed:
        value["oomKilled"] = True
    return value


def status_value(view: ContainerView) -> dict[str, object]:
    status: dict[str, object] = {
        "name": view.name,
        "imageRef": view.image_ref,
        "config": to_ditto_config(view.config),
    }
    if view.created_at:
        status["createdAt"] = view.created_at
    status["state"] = state_value(view.state)
    return status


def container_feature(view: ContainerView) -> dict[str, object]:
    return {"definition": [CONTAINER_DEFINITION], "properties": {"status": status_value(view)}}


def factory_feature() -> dict[str, object]:
    return {"definition": [FACTORY_DEFINITION]}


@dataclass(frozen=True, slots=True)
class Twin:
    """Builds the twin commands for one thing, sent to `e/<tenantId>/<thingId>`."""

    thing: ThingId
    tenant_id: str

    @property
    def topic(self) -> str:
        return f"e/{self.tenant_id}/{self.thing}"

    def _command(self, action: str, path: str, value: object, has_value: bool) -> Outbound:
        body: dict[str, object] = {
            "topic": f"{self.thing.topic_prefix}/things/twin/commands/{action}",
            "headers": {"response-required": False},
            "path": path,
        }
        if has_value:
            body["value"] = value
        return Outbound(self.topic, compact_json(body))

    def modify(self, path: str, value: object) -> Outbound:
        return self._command("modify", path, value, True)

    def delete(self, path: str) -> Outbound:
        return self._command("delete", path, None, False)

    def factory(self) -> Outbound:
        return self.modify(f"/features/{CONTAINER_FACTORY}", factory_feature())

    def container(self, view: ContainerView) -> Outbound:
        return self.modify(f"/features/{container_feature_id(view.id)}", container_feature(view))

    def delete_container(self, container_id: str) -> Outbound:
        return self.delete(f"/features/{container_feature_id(container_id)}")

    def status_property(self, container_id: str, prop: str, value: object) -> Outbound:
        feature = container_feature_id(container_id)
        return self.modify(f"/features/{feature}/properties/status/{prop}", value)


class TwinTracker:
    """Turns manager events into twin commands in Kanto's order (§2 event flow).

    It remembers the last state it published per container, so that a state repeated
    by the manager (the STATE(CREATED) that follows CREATED) is sent once, and a
    REMOVED event sends DEAD exactly once before the feature delete (CM#157), whether
    or not the manager announced DEAD itself. Not thread-safe: one publisher thread
    owns it.
    """

    def __init__(self, twin: Twin) -> None:
        self.twin = twin
        self._last: dict[str, dict[str, object]] = {}

    def republish(self, views: list[ContainerView]) -> list[Outbound]:
        """The whole feature set, as after a (re)connect."""
        out = [self.twin.factory()]
        for view in views:
            out.append(self.twin.container(view))
            self._last[view.id] = state_value(view.state)
        return out

    def _state(self, container_id: str, state: ContainerState) -> list[Outbound]:
        value = state_value(state)
        if self._last.get(container_id) == value:
            return []
        self._last[container_id] = value
        return [self.twin.status_property(container_id, "state", value)]

    def on_event(self, event: Event) -> list[Outbound]:
        view = event.container
        cid = view.id
        if event.kind is EventKind.CREATED:
            self._last.pop(cid, None)
            return [self.twin.container(view), *self._state(cid, view.state)]
        if event.kind is EventKind.STATE:
            return self._state(cid, view.state)
        if event.kind is EventKind.RENAMED:
            return [self.twin.status_property(cid, "name", view.name)]
        if event.kind is EventKind.UPDATED:
            return [self.twin.status_property(cid, "config", to_ditto_config(view.config))]
        out: list[Outbound] = []
        last = self._last.pop(cid, None)
        if last is None or last.get("status") != Status.DEAD.name:
            dead = replace(view.state, status=Status.DEAD, pid=-1)
            out.append(self.twin.status_property(cid, "state", state_value(dead)))
        out.append(self.twin.delete_container(cid))
        return out
