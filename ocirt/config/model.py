"""The container config model: typed, immutable values. Pure: no I/O.

These are the values that the rest of ocirt works with once `ocirt.config` has parsed,
defaulted and validated an input (Ditto camelCase or Kanto's persisted snake_case).
Sizes keep the text the user wrote (for a lossless round trip); `ocirt.config.sizes`
turns them into bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import NewType

ContainerId = NewType("ContainerId", str)


class NetworkMode(Enum):
    BRIDGE = "bridge"
    HOST = "host"


class RestartPolicyType(Enum):
    NO = "no"
    ALWAYS = "always"
    ON_FAILURE = "on-failure"
    UNLESS_STOPPED = "unless-stopped"


class LogDriver(Enum):
    JSON_FILE = "json-file"
    NONE = "none"


class LogMode(Enum):
    BLOCKING = "blocking"
    NON_BLOCKING = "non-blocking"


class Propagation(Enum):
    RPRIVATE = "rprivate"
    PRIVATE = "private"
    RSHARED = "rshared"
    SHARED = "shared"
    RSLAVE = "rslave"
    SLAVE = "slave"


class PortProtocol(Enum):
    TCP = "tcp"
    UDP = "udp"


@dataclass(frozen=True, slots=True)
class MountPoint:
    source: str
    destination: str
    propagation: Propagation = Propagation.RPRIVATE


@dataclass(frozen=True, slots=True)
class Device:
    path_on_host: str
    path_in_container: str
    cgroup_permissions: str = "rwm"


@dataclass(frozen=True, slots=True)
class PortMapping:
    container_port: int
    host_port: int
    host_port_end: int
    proto: PortProtocol = PortProtocol.TCP
    host_ip: str = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    type: RestartPolicyType = RestartPolicyType.UNLESS_STOPPED
    max_retry_count: int = 0
    # Whole seconds: Ditto sends float seconds (truncated), Kanto persists nanoseconds.
    retry_timeout: int = 0


@dataclass(frozen=True, slots=True)
class LogConfig:
    driver: LogDriver = LogDriver.JSON_FILE
    max_files: int = 2
    max_size: str = "100M"
    root_dir: str = ""
    mode: LogMode = LogMode.BLOCKING
    # Kanto fills "1M" only for non-blocking mode; empty otherwise.
    max_buffer_size: str = ""


@dataclass(frozen=True, slots=True)
class Resources:
    """Memory limits as written ("" = unset). memory_swap "-1" means unlimited swap."""

    memory: str = ""
    memory_reservation: str = ""
    memory_swap: str = ""


@dataclass(frozen=True, slots=True)
class Decryption:
    keys: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """The `config` object of createWithConfig, with Kanto's defaults filled in."""

    domain_name: str = ""
    host_name: str = ""
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    privileged: bool = False
    extra_hosts: tuple[str, ...] = ()
    extra_capabilities: tuple[str, ...] = ()
    network_mode: NetworkMode = NetworkMode.BRIDGE
    open_stdin: bool = False
    tty: bool = False
    mount_points: tuple[MountPoint, ...] = ()
    decryption: Decryption = field(default_factory=Decryption)
    devices: tuple[Device, ...] = ()
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    port_mappings: tuple[PortMapping, ...] = ()
    log: LogConfig = field(default_factory=LogConfig)
    resources: Resources = field(default_factory=Resources)


@dataclass(frozen=True, slots=True)
class ContainerDefinition:
    """What a client asked for: identity, image and config. Runtime state lives elsewhere."""

    id: ContainerId
    name: str
    image_ref: str
    config: ContainerConfig
