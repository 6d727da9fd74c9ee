"""A desired state (update-manager's `DesiredState`) -> container definitions. Pure: no I/O.

Kanto's `toInternalDesiredState` and `toContainer` (CM `containerm/updateagent`): exactly
one domain, with the agent's id; each component is a container named by its id, whose
`config` key/value pairs are the parameters of the current state minus the state keys.
The image defaults to `<id>:<version>`; restartMaxRetries and restartTimeout (whole
seconds) count for on-failure only; bad device, port and mount entries are skipped with a
warning, unknown keys are ignored, and everything else goes through the same defaults and
validation as a Ditto create, with Kanto's texts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ocirt.config import enums
from ocirt.config.defaults import fill_defaults
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    ContainerId,
    Device,
    LogConfig,
    MountPoint,
    PortMapping,
    PortProtocol,
    Propagation,
    Resources,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.config.reader import parse_enum
from ocirt.config.validation import Finding, validate
from ocirt.errors import ValidationError

KEY_SYSTEM_CONTAINERS = "systemContainers"
# Bounds an untrusted desired state.
MAX_COMPONENTS = 256
MAX_CONFIG_PAIRS = 1024

_PORT = re.compile(
    r"^(?:(?P<ip>[0-9a-fA-F.:\[\]]+):)?(?P<hp>\d{1,5})(?:-(?P<hpe>\d{1,5}))?:(?P<cp>\d{1,5})"
    r"(?:/(?P<proto>[a-zA-Z]+))?$"
)
_GO_INT = re.compile(r"[+-]?[0-9]{1,18}")
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


class IdentificationFailed(Exception):
    """A desired state the agent refuses; `message` is Kanto's text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class DesiredContainer:
    name: str
    version: str
    image_ref: str
    config: ContainerConfig


@dataclass(frozen=True, slots=True)
class DesiredState:
    containers: tuple[DesiredContainer, ...]
    # Baseline title -> names of its containers, in Kanto's order: the desired
    # baselines, then one `<domain>:<name>` baseline per container in none.
    baselines: tuple[tuple[str, tuple[str, ...]], ...]
    # None: the domain config does not name them; the daemon's list applies.
    system_containers: tuple[str, ...] | None
    warnings: tuple[str, ...] = ()

    def component_version(self, name: str) -> str:
        return next((c.version for c in self.containers if c.name == name), "")


def _obj(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> Sequence[object]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _pairs(value: object) -> list[tuple[str, str]]:
    pairs = []
    for item in _list(value)[:MAX_CONFIG_PAIRS]:
        item = _obj(item)
        pairs.append((_text(item.get("key")), _text(item.get("value"))))
    return pairs


def parse_desired_state(payload: object, domain: str) -> DesiredState:
    """The desired state of `domain`; raises IdentificationFailed with Kanto's texts."""
    body = _obj(payload)
    domains = _list(body.get("domains"))
    if len(domains) != 1:
        raise IdentificationFailed(
            f"one domain expected in desired state specification, but got {len(domains)}"
        )
    spec = _obj(domains[0])
    received = _text(spec.get("id"))
    if received != domain:
        raise IdentificationFailed(f"domain id mismatch - expecting {domain}, received {received}")
    warnings: list[str] = []
    containers = []
    for component in _list(spec.get("components"))[:MAX_COMPONENTS]:
        component = _obj(component)
        cid = _text(component.get("id"))
        try:
            containers.append(
                to_container(
                    cid, _text(component.get("version")), _pairs(component.get("config")), warnings
                )
            )
        except ValidationError as exc:
            raise IdentificationFailed(
                "cannot convert desired state components to container configurations: "
                f"invalid configuration for container {cid}: {exc.message}"
            ) from None
    try:
        baselines = _baselines(f"{domain}:", _list(body.get("baselines")), containers)
    except IdentificationFailed as exc:
        raise IdentificationFailed(
            f"cannot process desired state baselines with containers: {exc.message}"
        ) from None
    system: tuple[str, ...] | None = None
    for key, value in _pairs(spec.get("config")):
        if key == KEY_SYSTEM_CONTAINERS:
            system = tuple(name.strip() for name in value.split(","))
    return DesiredState(tuple(containers), baselines, system, tuple(warnings))


def _baselines(
    prefix: str, raw: Sequence[object], containers: Sequence[DesiredContainer]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Kanto's baselinesWithContainers: a container belongs to the first baseline naming
    it (a second one naming it fails); containers in none get a baseline of their own."""
    unclaimed = {c.name: c for c in containers}
    result: dict[str, tuple[str, ...]] = {}
    for item in raw[:MAX_COMPONENTS]:
        baseline = _obj(item)
        title = _text(baseline.get("title"))
        names = []
        for component in _list(baseline.get("components")):
            component = _text(component)
            if not component.startswith(prefix):
                continue
            name = component[len(prefix) :]
            if name not in unclaimed:
                raise IdentificationFailed(
                    f"problem with baseline {title}: cannot find container component {component}"
                )
            del unclaimed[name]
            names.append(name)
        result[title] = tuple(names)
    for name in unclaimed:
        result[prefix + name] = (name,)
    return tuple(result.items())


def _go_bool(key: str, config: Mapping[str, str], warnings: list[str]) -> bool:
    value = config.get(key)
    if value is None:
        return False
    if value in _GO_TRUE:
        return True
    if value not in _GO_FALSE:
        warnings.append(f"Unknown boolean value for key {key} = {value}")
    return False


def _go_int(key: str, config: Mapping[str, str], warnings: list[str]) -> int:
    value = config.get(key)
    if value is None:
        return 0
    if not _GO_INT.fullmatch(value):
        warnings.append(f"Unknown integer value for key {key} = {value}")
        return 0
    return int(value)


def parse_device(text: str) -> Device:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ValueError(f"invalid device mapping {text}")
    return Device(parts[0], parts[1], parts[2] if len(parts) == 3 else "rwm")


def parse_port(text: str) -> PortMapping:
    match = _PORT.match(text)
    if match is None:
        raise ValueError(f"invalid port mapping {text}")
    proto = parse_enum(PortProtocol, match["proto"]) if match["proto"] else PortProtocol.TCP
    if proto is None:
        raise ValueError(f"invalid port mapping protocol {match['proto']}")
    host = int(match["hp"])
    end = int(match["hpe"]) if match["hpe"] else host
    container = int(match["cp"])
    if not (0 < host <= 65535 and 0 < container <= 65535 and host <= end <= 65535):
        raise ValueError(f"invalid port mapping {text}")
    return PortMapping(container, host, end, proto, match["ip"] or "0.0.0.0")


def parse_mount(text: str) -> MountPoint:
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise ValueError(f"invalid mount point {text}")
    mode = Propagation.RPRIVATE
    if len(parts) == 3:
        found = parse_enum(Propagation, parts[2])
        if found is None:
            raise ValueError(f"invalid propagation mode {parts[2]}")
        mode = found
    return MountPoint(parts[0], parts[1], mode)


def to_container(
    name: str, version: str, pairs: Sequence[tuple[str, str]], warnings: list[str]
) -> DesiredContainer:
    """One component -> a filled, validated container; raises ValidationError."""
    devices: list[Device] = []
    ports: list[PortMapping] = []
    mounts: list[MountPoint] = []
    hosts: list[str] = []
    env: list[str] = []
    cmd: list[str] = []
    config: dict[str, str] = {}
    for key, value in pairs:
        try:
            if key == "device":
                devices.append(parse_device(value))
            elif key == "port":
                ports.append(parse_port(value))
            elif key == "mount":
                mounts.append(parse_mount(value))
            elif key == "host":
                hosts.append(value)
            elif key == "env":
                env.append(value)
            elif key == "cmd":
                cmd.append(value)
            else:
                config[key] = value
        except ValueError as exc:
            warnings.append(f"[{name}] ignoring {key} {value!r}: {exc}")
    pending: list[Finding] = []
    policy = RestartPolicy()
    if "restartPolicy" in config:
        kind = enums.restart_type(config["restartPolicy"], pending)
        policy = RestartPolicy(type=kind)
        if kind is RestartPolicyType.ON_FAILURE:
            policy = replace(
                policy,
                max_retry_count=_go_int("restartMaxRetries", config, warnings),
                retry_timeout=_go_int("restartTimeout", config, warnings),
            )
    container_config = ContainerConfig(
        env=tuple(env),
        cmd=tuple(cmd),
        privileged=_go_bool("privileged", config, warnings),
        extra_hosts=tuple(hosts),
        network_mode=enums.network_mode(config.get("network", ""), pending),
        open_stdin=_go_bool("interactive", config, warnings),
        tty=_go_bool("terminal", config, warnings),
        mount_points=tuple(mounts),
        devices=tuple(devices),
        restart_policy=policy,
        port_mappings=tuple(ports),
        log=LogConfig(
            driver=enums.log_driver(config.get("logDriver", ""), pending),
            max_files=_go_int("logMaxFiles", config, warnings),
            max_size=config.get("logMaxSize", ""),
            root_dir=config.get("logPath", ""),
            mode=enums.log_mode(config.get("logMode", ""), pending),
            max_buffer_size=config.get("logMaxBufferSize", ""),
        ),
        resources=Resources(
            memory=config.get("memory", ""),
            memory_reservation=config.get("memoryReservation", ""),
            memory_swap=config.get("memorySwap", ""),
        ),
    )
    image = config.get("image", f"{name}:{version}")
    definition = fill_defaults(ContainerDefinition(ContainerId(""), name, image, container_config))
    validate(definition, pending)
    return DesiredContainer(name, version, definition.image_ref, definition.config)
