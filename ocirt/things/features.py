"""The ContainerFactory and Container:<id> features: a command in, an Outcome out.

Does no I/O itself; every effect goes through the `ContainerManager` port, so the
caller decides on which thread a (possibly long) operation runs. Operation names,
value shapes and answers are Kanto's (docs/kanto-compatibility.md §2, features_container*.go):
every Container operation answers 204, a create answers 200 with the new id, any
OcirtError answers with its own status/code/message, anything else with 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ocirt.config.ditto import parse_create, parse_create_with_config, parse_update
from ocirt.config.model import ContainerId
from ocirt.errors import NotFound, OcirtError
from ocirt.manager import frontend
from ocirt.manager.types import StopOptions
from ocirt.things.ports import ContainerManager
from ocirt.things.protocol import (
    CONTAINER_FACTORY,
    CONTAINER_PREFIX,
    Code,
    Command,
    DittoError,
    Outcome,
    Rejection,
    unknown_feature,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeatureSettings:
    factory_enabled: bool = True


# A feature served outside this module (Metrics): its command in, its outcome out.
FeatureHandler = Callable[[Command], Outcome | Rejection]


class _BadValue(Exception):
    """The request value does not decode into the operation's argument type (400)."""


def _value_error(operation: str, expected: str) -> _BadValue:
    return _BadValue(f"invalid value for operation {operation}: expected {expected}")


class Features:
    """Dispatches commands to the manager port."""

    def __init__(
        self,
        manager: ContainerManager,
        settings: FeatureSettings | None = None,
        extra: Mapping[str, FeatureHandler] | None = None,
    ) -> None:
        self._manager = manager
        self._settings = settings or FeatureSettings()
        # Features beside the container ones (Metrics, SoftwareUpdatable), by feature id.
        self._extra = dict(extra or {})
        self._container_ops: dict[str, Callable[[ContainerId, Command], None]] = {
            "start": self._start,
            "stop": self._stop,
            "stopWithOptions": self._stop_with_options,
            "pause": self._pause,
            "resume": self._resume,
            "rename": self._rename,
            "update": self._update,
            "remove": self._remove,
        }

    def handle(self, command: Command) -> Outcome | Rejection:
        """Run one command. Never raises."""
        try:
            return self._dispatch(command)
        except _BadValue as exc:
            return Outcome.failed(DittoError.of(400, Code.PARAMETER_INVALID, str(exc)))
        except OcirtError as exc:
            return Outcome.failed(DittoError.from_exception(exc))
        except Exception as exc:
            log.exception("%s %s failed unexpectedly", command.feature, command.operation)
            return Outcome.failed(DittoError.of(500, Code.EXECUTION_FAILED, str(exc)))

    def _dispatch(self, command: Command) -> Outcome | Rejection:
        handler = self._extra.get(command.feature)
        if handler is not None:
            return handler(command)
        if command.feature == CONTAINER_FACTORY and self._settings.factory_enabled:
            return self._factory(command)
        if command.feature.startswith(CONTAINER_PREFIX) and self._settings.factory_enabled:
            container_id = ContainerId(command.feature[len(CONTAINER_PREFIX) :])
            try:
                self._manager.get(container_id)
            except NotFound:
                return unknown_feature(command)
            operation = self._container_ops.get(command.operation)
            if operation is None:
                return _unsupported(command)
            operation(container_id, command)
            return Outcome.done()
        return unknown_feature(command)

    # ---- ContainerFactory -------------------------------------------------------------

    def _factory(self, command: Command) -> Outcome:
        value = command.value
        if command.operation not in ("create", "createWithConfig"):
            return _unsupported(command)
        if not isinstance(value, dict):
            raise _value_error(command.operation, "a JSON object")
        image_ref = value.get("imageRef", "")
        if not isinstance(image_ref, str):
            raise _value_error(command.operation, '"imageRef" as a string')
        if not image_ref:
            # Kanto answers this one with 500 (features_container_factory.go).
            return Outcome.failed(DittoError.of(500, Code.EXECUTION_FAILED, "imageRef must be set"))
        if command.operation == "create":
            request = parse_create(value)
        else:
            request = parse_create_with_config(value)
        # A failed start still answers 200 with the id (`ocirt.manager.frontend`).
        view = frontend.create(self._manager, request)
        return Outcome.ok(view.id)

    # ---- Container:<id> -----------------------------------------------------------------

    def _start(self, container_id: ContainerId, command: Command) -> None:
        self._manager.start(container_id)

    def _stop(self, container_id: ContainerId, command: Command) -> None:
        self._manager.stop(container_id, StopOptions())

    def _stop_with_options(self, container_id: ContainerId, command: Command) -> None:
        value = command.value if command.value is not None else {}
        if not isinstance(value, dict):
            raise _value_error(command.operation, "a JSON object")
        signal = value.get("signal", "SIGTERM")
        if isinstance(signal, bool) or not isinstance(signal, str | int):
            raise _value_error(command.operation, '"signal" as a name or number')
        # Absent: the manager's default (manager.default_ctrs_stop_timeout).
        timeout = value.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float)
        ):
            raise _value_error(command.operation, '"timeout" as a number of seconds')
        force = value.get("force", False)
        if not isinstance(force, bool):
            raise _value_error(command.operation, '"force" as a boolean')
        options = StopOptions(
            signal=str(signal) or "SIGTERM",
            timeout=None if timeout is None else float(timeout),
            force=force,
        )
        self._manager.stop(container_id, options)

    def _pause(self, container_id: ContainerId, command: Command) -> None:
        self._manager.pause(container_id)

    def _resume(self, container_id: ContainerId, command: Command) -> None:
        self._manager.resume(container_id)

    def _rename(self, container_id: ContainerId, command: Command) -> None:
        if not isinstance(command.value, str):
            raise _value_error(command.operation, "the new name as a JSON string")
        self._manager.rename(container_id, command.value)

    def _update(self, container_id: ContainerId, command: Command) -> None:
        value = command.value if command.value is not None else {}
        if not isinstance(value, dict):
            raise _value_error(command.operation, "a JSON object")
        self._manager.update(container_id, parse_update(value))

    def _remove(self, container_id: ContainerId, command: Command) -> None:
        force = command.value
        if force is None:
            force = False
        if not isinstance(force, bool):
            raise _value_error(command.operation, "true or false")
        self._manager.remove(container_id, force)


def _unsupported(command: Command) -> Outcome:
    error = DittoError.of(404, Code.SUBJECT_NOT_FOUND, f"unsupported operation {command.operation}")
    return Outcome.failed(error)
