"""Kanto's persisted snake_case container format: parse and serialise. Pure: no I/O.

The same JSON is Kanto's `<home>/containers/<id>/config.json`, a deployment descriptor
and a `kanto-cm create -f` file (docs/kanto-compatibility.md §3), so all three load unchanged.
Top-level members that are not configuration (state, created, restart_count,
manually_stopped, started_successfully_before, network_settings, and anything unknown)
are handed back untouched in `PersistedContainer.extras`, for the store to round-trip.

Two details of the format: `retry_timeout` is Go nanoseconds (the model keeps whole
seconds), and a `devices` or `extra_capabilities` array that is present, even empty,
conflicts with `privileged`, as Go's non-nil slice does in Kanto.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from ocirt.config import enums
from ocirt.config import validation as rules
from ocirt.config.defaults import fill_defaults
from ocirt.config.ditto import PORT_MAX
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    ContainerId,
    Decryption,
    Device,
    LogConfig,
    MountPoint,
    PortMapping,
    Resources,
    RestartPolicy,
)
from ocirt.config.reader import Fields, load_json
from ocirt.config.validation import Finding
from ocirt.errors import ValidationError

NANOSECONDS = 1_000_000_000
# What Kanto writes for its containerd shim; kept so that Kanto can read our files back.
KANTO_RUNTIME = "io.containerd.runc.v2"
CONFIG_KEYS = frozenset(
    {
        "container_id",
        "container_name",
        "image",
        "domain_name",
        "host_name",
        "mount_points",
        "config",
        "host_config",
        "io_config",
    }
)


def _no_extras() -> Mapping[str, object]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PersistedContainer:
    """A defaulted, validated definition plus the file's other top-level members."""

    definition: ContainerDefinition
    extras: Mapping[str, object] = field(default_factory=_no_extras)


# ---------------------------------------------------------------------------- reading


def _seconds(nanoseconds: int) -> int:
    """Whole seconds, truncated toward zero as Go's Duration.Seconds() -> int would be."""
    whole = abs(nanoseconds) // NANOSECONDS
    return whole if nanoseconds >= 0 else -whole


def _restart_policy(fields: Fields | None, pending: list[Finding]) -> RestartPolicy:
    if fields is None:
        return RestartPolicy()
    return RestartPolicy(
        type=enums.restart_type(fields.string("type"), pending),
        max_retry_count=fields.integer("maximum_retry_count"),
        retry_timeout=_seconds(fields.integer("retry_timeout")),
    )


def _log(fields: Fields | None, pending: list[Finding]) -> LogConfig:
    if fields is None:
        return LogConfig()
    driver = fields.object("driver_config")
    mode = fields.object("mode_config")
    default = LogConfig()
    return LogConfig(
        driver=enums.log_driver(driver.string("type"), pending) if driver else default.driver,
        max_files=driver.integer("max_files") if driver else default.max_files,
        max_size=driver.string("max_size") if driver else default.max_size,
        root_dir=driver.string("root_dir") if driver else default.root_dir,
        mode=enums.log_mode(mode.string("mode"), pending) if mode else default.mode,
        max_buffer_size=mode.string("max_buffer_size") if mode else default.max_buffer_size,
    )


def _resources(fields: Fields | None) -> Resources:
    if fields is None:
        return Resources()
    return Resources(
        memory=fields.string("memory"),
        memory_reservation=fields.string("memory_reservation"),
        memory_swap=fields.string("memory_swap"),
    )


def _port(item: Fields, index: int, pending: list[Finding]) -> PortMapping:
    return PortMapping(
        proto=enums.protocol(item.string("proto"), index, pending),
        container_port=item.integer("container_port", low=0, high=PORT_MAX),
        host_port=item.integer("host_port", low=0, high=PORT_MAX),
        host_port_end=item.integer("host_port_end", low=0, high=PORT_MAX),
        host_ip=item.string("host_ip"),
    )


def _config(top: Fields, pending: list[Finding]) -> ContainerConfig:
    image = top.object("image")
    decrypt = image.object("decrypt_config") if image else None
    process = top.object("config")
    io = top.object("io_config")
    # Kanto fills a missing host_config with its defaults; an empty object reads the same.
    host = top.object("host_config") or Fields({}, "host_config")
    privileged = host.boolean("privileged")
    devices = host.objects("devices")
    capabilities = host.strings("extra_capabilities")
    if privileged and devices is not None:
        pending.append(rules.PRIVILEGED_WITH_DEVICES)
    if privileged and capabilities is not None:
        pending.append(rules.PRIVILEGED_WITH_CAPABILITIES)
    return ContainerConfig(
        domain_name=top.string("domain_name"),
        host_name=top.string("host_name"),
        env=(process.strings("env") if process else None) or (),
        cmd=(process.strings("cmd") if process else None) or (),
        privileged=privileged,
        extra_hosts=host.strings("extra_hosts") or (),
        extra_capabilities=capabilities or (),
        network_mode=enums.network_mode(host.string("network_mode"), pending),
        open_stdin=io.boolean("open_stdin") if io else False,
        tty=io.boolean("tty") if io else False,
        mount_points=tuple(
            MountPoint(
                source=item.string("source"),
                destination=item.string("destination"),
                propagation=enums.propagation(item.string("propagation_mode"), index, pending),
            )
            for index, item in enumerate(top.objects("mount_points") or ())
        ),
        decryption=Decryption(
            keys=decrypt.strings("keys") or (),
            recipients=decrypt.strings("recipients") or (),
        )
        if decrypt
        else Decryption(),
        devices=tuple(
            Device(
                path_on_host=item.string("path_on_host"),
                path_in_container=item.string("path_in_container"),
                cgroup_permissions=item.string("cgroup_permissions"),
            )
            for item in devices or ()
        ),
        restart_policy=_restart_policy(host.object("restart_policy"), pending),
        port_mappings=tuple(
            _port(item, index, pending)
            for index, item in enumerate(host.objects("port_mappings") or ())
        ),
        log=_log(host.object("log_config"), pending),
        resources=_resources(host.object("resources")),
    )


def parse_persisted(data: object, *, default_id: str | None = None) -> PersistedContainer:
    """A Kanto container JSON (decoded), defaulted and validated.

    Deployment descriptors and `kanto-cm create -f` files usually carry no container_id:
    the caller then passes the id it chose as `default_id`.
    """
    top = Fields(data, "")
    container_id = top.string("container_id") or default_id
    if not container_id:
        raise ValidationError("container_id must be set")
    image = top.object("image")
    pending: list[Finding] = []
    config = _config(top, pending)
    definition = fill_defaults(
        ContainerDefinition(
            id=ContainerId(container_id),
            name=top.string("container_name"),
            image_ref=image.string("name") if image else "",
            config=config,
        )
    )
    rules.validate(definition, pending)
    extras = {key: value for key, value in top.items() if key not in CONFIG_KEYS}
    return PersistedContainer(definition=definition, extras=MappingProxyType(extras))


def parse_persisted_json(text: str | bytes, *, default_id: str | None = None) -> PersistedContainer:
    """`parse_persisted` of JSON text; malformed JSON is a ValidationError too."""
    return parse_persisted(load_json(text), default_id=default_id)


# ---------------------------------------------------------------------------- writing


def _nil_if_empty(items: Sequence[object]) -> list[object] | None:
    # An empty but present devices/extra_capabilities array conflicts with privileged in
    # Kanto, so empty lists are written as null, which is what Kanto itself writes.
    return list(items) or None


def to_persisted(
    definition: ContainerDefinition, extras: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The Kanto snake_case JSON object of a definition, with `extras` appended."""
    config = definition.config
    image: dict[str, object] = {"name": definition.image_ref}
    if config.decryption.keys or config.decryption.recipients:
        image["decrypt_config"] = {
            "keys": list(config.decryption.keys),
            "recipients": list(config.decryption.recipients),
        }
    policy = config.restart_policy
    log = config.log
    driver: dict[str, object] = {"type": log.driver.value}
    # Go's omitempty on these members.
    for key, value in (
        ("max_files", log.max_files),
        ("max_size", log.max_size),
        ("root_dir", log.root_dir),
    ):
        if value:
            driver[key] = value
    mode: dict[str, object] = {"mode": log.mode.value}
    if log.max_buffer_size:
        mode["max_buffer_size"] = log.max_buffer_size
    resources = config.resources
    has_resources = resources != Resources()
    out: dict[str, object] = {
        "container_id": str(definition.id),
        "container_name": definition.name,
        "image": image,
        "domain_name": config.domain_name,
        "host_name": config.host_name,
        "mount_points": _nil_if_empty(
            [
                {
                    "destination": mount.destination,
                    "source": mount.source,
                    "propagation_mode": mount.propagation.value,
                }
                for mount in config.mount_points
            ],
        ),
        "config": {"env": list(config.env), "cmd": list(config.cmd)},
        "host_config": {
            "devices": _nil_if_empty(
                [
                    {
                        "path_on_host": device.path_on_host,
                        "path_in_container": device.path_in_container,
                        "cgroup_permissions": device.cgroup_permissions,
                    }
                    for device in config.devices
                ],
            ),
            "network_mode": config.network_mode.value,
            "privileged": config.privileged,
            "restart_policy": {
                "maximum_retry_count": policy.max_retry_count,
                "retry_timeout": policy.retry_timeout * NANOSECONDS,
                "type": policy.type.value,
            },
            "runtime": KANTO_RUNTIME,
            "extra_hosts": _nil_if_empty(config.extra_hosts),
            "extra_capabilities": _nil_if_empty(config.extra_capabilities),
            "port_mappings": _nil_if_empty(
                [
                    {
                        "proto": port.proto.value,
                        "container_port": port.container_port,
                        "host_ip": port.host_ip,
                        "host_port": port.host_port,
                        "host_port_end": port.host_port_end,
                    }
                    for port in config.port_mappings
                ],
            ),
            "log_config": {"driver_config": driver, "mode_config": mode},
            "resources": {
                "memory": resources.memory,
                "memory_reservation": resources.memory_reservation,
                "memory_swap": resources.memory_swap,
            }
            if has_resources
            else None,
        },
        "io_config": {
            "attach_stderr": False,
            "attach_stdin": False,
            "attach_stdout": False,
            "open_stdin": config.open_stdin,
            "stdin_once": False,
            "tty": config.tty,
        },
    }
    for name, extra in (extras or {}).items():
        if name not in CONFIG_KEYS:
            out[name] = extra
    return out
