"""Validation of a container definition, with Kanto's messages and order. Pure: no I/O.

The rules are Kanto's ValidateContainer (docs/kanto-compatibility.md §3), checked in its order so
that the first error a client sees is the one Kanto would report. A few rules concern values
that the typed model cannot hold (an unknown network mode, an empty restart type in a
given object...): the parsers find those while reading and hand them in as `Finding`s
with the rank of the rule they belong to, so they still take their place in the order.

Rules of §3 that Kanto can never reach, because FillDefaults always runs first and the
typed model cannot express them, are left out: "the containers host config is mandatory
and is missing", "network mode is not set" and "the container's IO config is missing".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ocirt.config.defaults import UTS_NAME_MAX
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    LogConfig,
    LogDriver,
    LogMode,
    NetworkMode,
    Resources,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.config.sizes import parse_size
from ocirt.errors import AlreadyExists, ValidationError

_NAME = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9_.-]*")
_HOST_IP_KEY = re.compile(r"(.+):host_ip(_(.+))?")
_ENV = re.compile(r"[a-zA-Z_]([a-zA-Z0-9_]*)(|=(.*))")
_MIN_MEMORY = 3 * 1024 * 1024

# Ranks: the numbers of §3's list, then the position inside that rule.
IMAGE = 1
NAME = 2
MOUNTS = 3
PRIVILEGED = 5
NETWORK = 6
DEVICES = 7
LOG = 8
RESTART = 9
RESOURCES = 10
ENV = 11


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    """One failed rule: `rank` orders findings the way Kanto checks them."""

    rank: tuple[int, ...]
    message: str


def _size_bytes(text: str) -> int | None:
    """Bytes of a size text, 0 for "" (unset), None when malformed."""
    if not text:
        return 0
    try:
        return parse_size(text)
    except ValidationError:
        return None


def _mounts(config: ContainerConfig) -> Iterator[Finding]:
    for index, mount in enumerate(config.mount_points):
        if not mount.source or not mount.destination:
            yield Finding(
                (MOUNTS, index, 0), "source and destination must be set for a mount point"
            )
        elif not mount.source.startswith("/"):
            # Kanto passes it on and the start fails; a path relative to the daemon's
            # working directory means nothing to a client.
            yield Finding(
                (MOUNTS, index, 1),
                f"the source of a mount point must be an absolute path on the host: {mount.source}",
            )


PRIVILEGED_WITH_DEVICES = Finding(
    (PRIVILEGED, 0),
    "cannot create the container as privileged and with specified devices at the same time"
    " - choose one of the options",
)
PRIVILEGED_WITH_CAPABILITIES = Finding(
    (PRIVILEGED, 1),
    "cannot create the container as privileged and with extra capabilities at the same time"
    " - choose one of the options",
)


def _privileged(config: ContainerConfig) -> Iterator[Finding]:
    if config.privileged and config.devices:
        yield PRIVILEGED_WITH_DEVICES
    if config.privileged and config.extra_capabilities:
        yield PRIVILEGED_WITH_CAPABILITIES


def _network(config: ContainerConfig) -> Iterator[Finding]:
    if config.network_mode is not NetworkMode.HOST:
        return
    if config.port_mappings:
        yield Finding((NETWORK, 1), "cannot use port mappings when in host network mode")
    for index, host in enumerate(config.extra_hosts):
        if _HOST_IP_KEY.fullmatch(host):
            yield Finding(
                (NETWORK, 2, index),
                "cannot use the host_ip reserved key or any of its modifications when in"
                " host network mode",
            )


def _uts_names(config: ContainerConfig) -> Iterator[Finding]:
    """Not Kanto's: a name the kernel cannot set would be accepted and fail at each start.
    The host name is the host's own in host mode; the domain name is set in every mode."""
    if config.network_mode is not NetworkMode.HOST and len(config.host_name) > UTS_NAME_MAX:
        yield Finding(
            (NETWORK, 3),
            f"host name {config.host_name} is longer than {UTS_NAME_MAX} characters",
        )
    if len(config.domain_name) > UTS_NAME_MAX:
        yield Finding(
            (NETWORK, 4),
            f"domain name {config.domain_name} is longer than {UTS_NAME_MAX} characters",
        )


def _devices(config: ContainerConfig) -> Iterator[Finding]:
    for index, device in enumerate(config.devices):
        if not device.path_on_host or not device.path_in_container:
            yield Finding(
                (DEVICES, index, 0),
                "both path on the host and in the container must be specified for a device mapping",
            )
        if not device.cgroup_permissions:
            yield Finding(
                (DEVICES, index, 1),
                f"the cgroup permissions for device mapping {device.path_on_host}:"
                f"{device.path_in_container} are not provided",
            )


def _log(log: LogConfig) -> Iterator[Finding]:
    if log.driver is LogDriver.JSON_FILE:
        if log.max_files < 1:
            yield Finding((LOG, 1), "max log files cannot be < 1")
        if not log.max_size:
            yield Finding((LOG, 2), "max logs size must be set")
        elif _size_bytes(log.max_size) is None:
            yield Finding((LOG, 3), f"invalid format of max logs size - {log.max_size}")
    if log.mode is LogMode.NON_BLOCKING:
        if not log.max_buffer_size:
            yield Finding((LOG, 5), "max buffer size must be set")
        elif _size_bytes(log.max_buffer_size) is None:
            yield Finding((LOG, 6), f"invalid format of max buffer size - {log.max_buffer_size}")


def restart_policy_findings(policy: RestartPolicy) -> Iterator[Finding]:
    """Kanto's ValidateRestartPolicy (also used alone by `update`)."""
    if policy.type is RestartPolicyType.ON_FAILURE:
        if policy.max_retry_count < 0:
            yield Finding((RESTART, 1), "restart policy max retry count cannot be negative")
        if policy.retry_timeout < 0:
            yield Finding((RESTART, 2), "restart policy retry timeout cannot be negative")
    elif policy.max_retry_count != 0:
        yield Finding(
            (RESTART, 3),
            f"cannot use max retry count when the restart policy is {policy.type.value}",
        )


def resources_findings(resources: Resources) -> Iterator[Finding]:
    """Kanto's ValidateResources (also used alone by `update`)."""
    memory = _size_bytes(resources.memory)
    if memory is None:
        yield Finding((RESOURCES, 0), f"invalid format of memory - {resources.memory}")
        return
    reservation = _size_bytes(resources.memory_reservation)
    if reservation is None:
        yield Finding(
            (RESOURCES, 1),
            f"invalid format of memory reservation - {resources.memory_reservation}",
        )
        return
    swap = -1 if resources.memory_swap == "-1" else _size_bytes(resources.memory_swap)
    if swap is None:
        yield Finding((RESOURCES, 2), f"invalid format of swap memory - {resources.memory_swap}")
        return
    if 0 < memory < _MIN_MEMORY:
        yield Finding((RESOURCES, 3), "minimum memory allowed is 3M")
    if swap > 0:
        if not resources.memory:
            yield Finding(
                (RESOURCES, 4),
                f"swap memory - {resources.memory_swap}, memory must be set as well",
            )
        elif memory > swap:
            yield Finding(
                (RESOURCES, 5),
                f"swap memory - {resources.memory_swap} is less than memory - {resources.memory}",
            )
    if reservation > 0 and resources.memory and reservation > memory:
        yield Finding(
            (RESOURCES, 6),
            f"reservation memory - {resources.memory_reservation} must be lower than memory"
            f" - {resources.memory}",
        )


def _env(config: ContainerConfig) -> Iterator[Finding]:
    for index, variable in enumerate(config.env):
        if not _ENV.fullmatch(variable):
            yield Finding(
                (ENV, index),
                f"invalid environmental variable declaration provided : {variable}",
            )


def definition_findings(definition: ContainerDefinition) -> Iterator[Finding]:
    """Every rule of §3 that the definition breaks (in no particular order)."""
    if not definition.image_ref:
        yield Finding((IMAGE,), "the containers image configuration is invalid")
    if definition.name and not _NAME.fullmatch(definition.name):
        yield Finding((NAME,), f"invalid container name format : {definition.name}")
    config = definition.config
    yield from _mounts(config)
    yield from _privileged(config)
    yield from _network(config)
    yield from _uts_names(config)
    yield from _devices(config)
    yield from _log(config.log)
    yield from restart_policy_findings(config.restart_policy)
    yield from resources_findings(config.resources)
    yield from _env(config)


def raise_first(findings: Iterable[Finding]) -> None:
    """Raise the finding Kanto would report first, if there is any."""
    first = min(findings, default=None)
    if first is not None:
        raise ValidationError(first.message)


def validate(definition: ContainerDefinition, pending: Iterable[Finding] = ()) -> None:
    """Raise ValidationError with Kanto's message for the first rule the definition breaks.

    Call it after `fill_defaults`, as Kanto does; `pending` carries what a parser found.
    """
    raise_first([*pending, *definition_findings(definition)])


def check_name(name: str) -> None:
    """Kanto's ValidateName, as `rename` uses it: empty is allowed (a no-op rename)."""
    if name and not _NAME.fullmatch(name):
        raise ValidationError(f"invalid container name format : {name}")


def check_unique_name(name: str, existing_names: Iterable[str]) -> None:
    """Refuse a name that another container already has (docs/kanto-compatibility.md decision 8).

    The caller passes the names of the *other* containers, so renaming a container to its
    own name stays a no-op.
    """
    if name in set(existing_names):
        raise AlreadyExists(f"container with name = {name} already exists")
