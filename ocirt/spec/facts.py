"""The facts the spec builder needs that only effectful code can learn. Pure: no I/O.

Effectful resolvers (`ocirt.runtime.hostfacts`, the image store, the network applier)
read the host, the image and the network first; `ocirt.spec.builder` then turns these
values plus a container config into a runtime spec without touching anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ocirt.errors import ImageError
from ocirt.health.healthcheck import Healthcheck, parse_healthcheck

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"invalid image config: {key} must be a list of strings")
    return tuple(value)


def _string(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ImageError(f"invalid image config: {key} must be a string")
    return value


def _key_set(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Docker encodes sets (ExposedPorts, Volumes) as an object whose values are ``{}``."""
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ImageError(f"invalid image config: {key} must be an object")
    return tuple(sorted(str(k) for k in value))


def _labels(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    value = raw.get("Labels")
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ImageError("invalid image config: Labels must map strings to strings")
    return tuple(sorted((str(k), v) for k, v in value.items()))


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The execution parameters of an image (image-spec config.md, ``config`` object)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    # Docker's Healthcheck (issue 16 hook); None: the image has none.
    healthcheck: Healthcheck | None = None

    @classmethod
    def from_oci_json(cls, raw: object) -> ImageConfig:
        """Parse the ``config`` object of an OCI or Docker image config; null means empty.

        The input comes from a registry, so every wrong type is an `ImageError`.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ImageError("invalid image config: config must be an object")
        return cls(
            entrypoint=_strings(raw, "Entrypoint"),
            cmd=_strings(raw, "Cmd"),
            env=_strings(raw, "Env"),
            working_dir=_string(raw, "WorkingDir"),
            user=_string(raw, "User"),
            stop_signal=_string(raw, "StopSignal"),
            exposed_ports=_key_set(raw, "ExposedPorts"),
            volumes=_key_set(raw, "Volumes"),
            labels=_labels(raw),
            healthcheck=parse_healthcheck(raw.get("Healthcheck")),
        )

    @classmethod
    def from_image_json(cls, raw: object) -> ImageConfig:
        """Parse a whole image config blob (``{"architecture":..,"config":{..},..}``)."""
        if not isinstance(raw, dict):
            raise ImageError("invalid image config: not a JSON object")
        return cls.from_oci_json(raw.get("config"))


@dataclass(frozen=True, slots=True)
class UserIds:
    """The numeric identity of the container process, resolved from the image's User."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class HostDevice:
    """A device node on the host as stat() saw it. `type` is "c" or "b"."""

    path: str
    type: str
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What the manager itself may grant, read once at start.

    `capabilities` is the manager's bounding set (names); `hard_rlimits` maps
    ``RLIMIT_*`` names to the manager's hard limits (runc cannot raise past them, even as
    root); `devices` lists every host device node (only needed for privileged
    containers); `hostname` is the host's own name, used in host network mode.
    """

    capabilities: tuple[str, ...]
    hard_rlimits: Mapping[str, int] = field(default_factory=dict)
    devices: tuple[HostDevice, ...] = ()
    hostname: str = ""


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """Where the container's network lives: a netns path to join, or the host's (None)."""

    netns_path: str | None

    @classmethod
    def host(cls) -> NetworkAttachment:
        return cls(None)

    @classmethod
    def netns(cls, path: str) -> NetworkAttachment:
        return cls(path)

    @property
    def is_host(self) -> bool:
        return self.netns_path is None


@dataclass(frozen=True, slots=True)
class BundlePaths:
    """Host paths the spec refers to. A None file is not bind-mounted.

    `cgroups_path` is relative (``ocirt/<id>``): runc then places it below the manager's
    own cgroup, which on nested hosts is not the hierarchy root (docs/runtime-notes.md §6).
    """

    rootfs: str
    hosts: str | None = None
    resolv_conf: str | None = None
    hostname: str | None = None
    cgroups_path: str | None = None
