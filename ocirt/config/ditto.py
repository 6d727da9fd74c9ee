"""The Ditto (camelCase) forms of the container config: parse and serialise. Pure: no I/O.

Inputs are the decoded `value` of the ContainerFactory `create` / `createWithConfig` and
Container `update` messages (Kanto's ContainerFactory and Container API docs); the output is
the `status.config` member of a Container feature (docs/kanto-compatibility.md §2). Unknown keys are
ignored as Kanto ignores them; wrong types are ValidationErrors naming the member.

Enums are read in either case and with - or _ (docs/kanto-compatibility.md decision 4) and written
upper-case as Kanto writes them; empty members are omitted, as Go's `omitempty` omits them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ocirt.config import enums
from ocirt.config import validation as rules
from ocirt.config.defaults import fill_config, fill_defaults, fill_resources
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
from ocirt.config.reader import INT64_MAX, Fields
from ocirt.config.validation import Finding
from ocirt.errors import ValidationError

PORT_MAX = 65535
# Seconds that still fit in Go's time.Duration (int64 nanoseconds).
MAX_TIMEOUT_SECONDS = INT64_MAX // 1_000_000_000


@dataclass(frozen=True, slots=True)
class CreateRequest:
    """A `create` or `createWithConfig` value. `config` has every default that does not
    depend on the container id; `new_definition` adds the rest once the id is chosen."""

    image_ref: str
    start: bool
    name: str | None = None
    config: ContainerConfig = field(default_factory=ContainerConfig)


@dataclass(frozen=True, slots=True)
class ContainerUpdate:
    """An `update` value: None leaves that part unchanged; `Resources()` removes limits."""

    restart_policy: RestartPolicy | None = None
    resources: Resources | None = None


# ---------------------------------------------------------------------------- reading


def _restart_policy(fields: Fields, pending: list[Finding], *, alias: bool) -> RestartPolicy:
    timeout_key = "retryTimeout"
    if alias and not fields.has("retryTimeout") and fields.has("timeout"):
        # The name Kanto's Container API doc uses (docs/kanto-compatibility.md decision 6).
        timeout_key = "timeout"
    seconds = fields.number(timeout_key, low=-MAX_TIMEOUT_SECONDS, high=MAX_TIMEOUT_SECONDS)
    return RestartPolicy(
        type=enums.restart_type(fields.string("type"), pending),
        max_retry_count=fields.integer("maxRetryCount"),
        # Kanto converts float seconds with time.Duration(x), which truncates toward zero.
        retry_timeout=int(seconds),
    )


def _resources(fields: Fields) -> Resources:
    return Resources(
        memory=fields.string("memory"),
        memory_reservation=fields.string("memoryReservation"),
        memory_swap=fields.string("memorySwap"),
    )


def _log(fields: Fields, pending: list[Finding]) -> LogConfig:
    return LogConfig(
        driver=enums.log_driver(fields.string("type"), pending),
        max_files=fields.integer("maxFiles"),
        max_size=fields.string("maxSize"),
        root_dir=fields.string("rootDir"),
        mode=enums.log_mode(fields.string("mode"), pending),
        max_buffer_size=fields.string("maxBufferSize"),
    )


def read_config(fields: Fields | None) -> tuple[ContainerConfig, list[Finding]]:
    """The Ditto `config` object as a ContainerConfig (no defaults yet) and what it breaks."""
    pending: list[Finding] = []
    if fields is None:
        return ContainerConfig(), pending
    privileged = fields.boolean("privileged")
    mounts = tuple(
        MountPoint(
            source=item.string("source"),
            destination=item.string("destination"),
            propagation=enums.propagation(item.string("propagationMode"), index, pending),
        )
        for index, item in enumerate(fields.objects("mountPoints") or ())
    )
    devices = tuple(
        Device(
            path_on_host=item.string("pathOnHost"),
            path_in_container=item.string("pathInContainer"),
            cgroup_permissions=item.string("cgroupPermissions"),
        )
        for item in fields.objects("devices") or ()
    )
    ports = tuple(
        PortMapping(
            proto=enums.protocol(item.string("proto"), index, pending),
            container_port=item.integer("containerPort", low=0, high=PORT_MAX),
            host_port=item.integer("hostPort", low=0, high=PORT_MAX),
            host_port_end=item.integer("hostPortEnd", low=0, high=PORT_MAX),
            host_ip=item.string("hostIP"),
        )
        for index, item in enumerate(fields.objects("portMappings") or ())
    )
    decryption = fields.object("decryption")
    restart = fields.object("restartPolicy")
    log = fields.object("log")
    resources = fields.object("resources")
    capabilities = fields.strings("extraCapabilities") or ()
    config = ContainerConfig(
        domain_name=fields.string("domainName"),
        host_name=fields.string("hostName"),
        env=fields.strings("env") or (),
        cmd=fields.strings("cmd") or (),
        privileged=privileged,
        extra_hosts=fields.strings("extraHosts") or (),
        # Kanto drops extra capabilities from a privileged Ditto config
        # (docs/kanto-compatibility.md §2).
        extra_capabilities=() if privileged else capabilities,
        network_mode=enums.network_mode(fields.string("networkMode"), pending),
        open_stdin=fields.boolean("openStdin"),
        tty=fields.boolean("tty"),
        mount_points=mounts,
        decryption=Decryption(
            keys=decryption.strings("keys") or (),
            recipients=decryption.strings("recipients") or (),
        )
        if decryption
        else Decryption(),
        devices=devices,
        restart_policy=_restart_policy(restart, pending, alias=False)
        if restart
        else RestartPolicy(),
        port_mappings=ports,
        log=_log(log, pending) if log else LogConfig(),
        resources=_resources(resources) if resources else Resources(),
    )
    return config, pending


def parse_container_config(value: object) -> ContainerConfig:
    """A Ditto `config` object (e.g. `status.config`), defaulted and validated."""
    config, pending = read_config(Fields(value, "config"))
    config = fill_config(config)
    # A config alone has no image; any non-empty reference keeps rule 1 quiet.
    rules.validate(ContainerDefinition(ContainerId(""), "", "(config)", config), pending)
    return config


def _create_fields(value: object) -> tuple[Fields, str, bool]:
    fields = Fields(value, "value")
    image_ref = fields.string("imageRef")
    start = fields.boolean("start")
    return fields, image_ref, start


def _require_image(image_ref: str) -> None:
    if not image_ref:
        raise ValidationError("imageRef must be set")


def parse_create(value: object) -> CreateRequest:
    """The ContainerFactory `create` value `{imageRef, start}`; other keys are ignored."""
    _fields, image_ref, start = _create_fields(value)
    _require_image(image_ref)
    return CreateRequest(image_ref=image_ref, start=start, config=fill_config(ContainerConfig()))


def parse_create_with_config(value: object) -> CreateRequest:
    """The `createWithConfig` value `{imageRef, name?, start, config?}`, validated."""
    fields, image_ref, start = _create_fields(value)
    name = fields.string("name")
    config, pending = read_config(fields.object("config"))
    _require_image(image_ref)
    config = fill_config(config)
    # The id is not chosen yet; no rule depends on it, and an unnamed container is named
    # after its id, which is always a valid name.
    rules.validate(ContainerDefinition(ContainerId(""), name, image_ref, config), pending)
    return CreateRequest(image_ref=image_ref, start=start, name=name or None, config=config)


def new_definition(container_id: ContainerId, request: CreateRequest) -> ContainerDefinition:
    """The full definition of a new container: id-dependent defaults filled, validated."""
    definition = fill_defaults(
        ContainerDefinition(container_id, request.name or "", request.image_ref, request.config)
    )
    rules.validate(definition)
    return definition


def parse_update(value: object) -> ContainerUpdate:
    """The Container `update` value `{restartPolicy?, resources?}`.

    As in Kanto only these two parts are validated. Swap is defaulted to twice the memory
    as at create, so that refilling defaults on a later reload cannot change it.
    """
    fields = Fields(value, "value")
    pending: list[Finding] = []
    restart = fields.object("restartPolicy")
    resources = fields.object("resources")
    policy = _restart_policy(restart, pending, alias=True) if restart else None
    limits = fill_resources(_resources(resources)) if resources else None
    if policy is not None:
        pending.extend(rules.restart_policy_findings(policy))
    if limits is not None:
        pending.extend(rules.resources_findings(limits))
    rules.raise_first(pending)
    return ContainerUpdate(restart_policy=policy, resources=limits)


def apply_update(definition: ContainerDefinition, update: ContainerUpdate) -> ContainerDefinition:
    """The definition with the update merged in (the parts it leaves out are kept)."""
    config = definition.config
    if update.restart_policy is not None:
        config = replace(config, restart_policy=update.restart_policy)
    if update.resources is not None:
        config = replace(config, resources=update.resources)
    return replace(definition, config=config)


# ---------------------------------------------------------------------------- writing


def _upper(value: str) -> str:
    return value.upper().replace("-", "_")


def _put(target: dict[str, object], key: str, value: object) -> None:
    """Go's omitempty: leave out "", 0, false, empty arrays and empty objects."""
    if value:
        target[key] = value


def to_ditto_config(config: ContainerConfig) -> dict[str, object]:
    """The `status.config` value, in the member order of Kanto's Go struct."""
    out: dict[str, object] = {}
    _put(out, "domainName", config.domain_name)
    _put(
        out,
        "mountPoints",
        [
            {
                "source": mount.source,
                "destination": mount.destination,
                "propagationMode": _upper(mount.propagation.value),
            }
            for mount in config.mount_points
        ],
    )
    _put(out, "hostName", config.host_name)
    _put(out, "env", list(config.env))
    _put(out, "cmd", list(config.cmd))
    decryption: dict[str, object] = {}
    _put(decryption, "keys", list(config.decryption.keys))
    _put(decryption, "recipients", list(config.decryption.recipients))
    _put(out, "decryption", decryption)
    devices = []
    for device in config.devices:
        item: dict[str, object] = {
            "pathOnHost": device.path_on_host,
            "pathInContainer": device.path_in_container,
        }
        _put(item, "cgroupPermissions", device.cgroup_permissions)
        devices.append(item)
    _put(out, "devices", devices)
    _put(out, "privileged", config.privileged)
    policy: dict[str, object] = {}
    _put(policy, "maxRetryCount", config.restart_policy.max_retry_count)
    _put(policy, "retryTimeout", config.restart_policy.retry_timeout)
    policy["type"] = _upper(config.restart_policy.type.value)
    out["restartPolicy"] = policy
    _put(out, "extraHosts", list(config.extra_hosts))
    _put(out, "extraCapabilities", list(config.extra_capabilities))
    ports = []
    for port in config.port_mappings:
        mapping: dict[str, object] = {"proto": port.proto.value, "hostPort": port.host_port}
        _put(mapping, "hostPortEnd", port.host_port_end)
        mapping["containerPort"] = port.container_port
        _put(mapping, "hostIP", port.host_ip)
        ports.append(mapping)
    _put(out, "portMappings", ports)
    out["networkMode"] = _upper(config.network_mode.value)
    _put(out, "openStdin", config.open_stdin)
    _put(out, "tty", config.tty)
    log: dict[str, object] = {"type": _upper(config.log.driver.value)}
    _put(log, "maxFiles", config.log.max_files)
    _put(log, "maxSize", config.log.max_size)
    _put(log, "rootDir", config.log.root_dir)
    log["mode"] = _upper(config.log.mode.value)
    _put(log, "maxBufferSize", config.log.max_buffer_size)
    out["log"] = log
    resources: dict[str, object] = {}
    _put(resources, "memory", config.resources.memory)
    _put(resources, "memoryReservation", config.resources.memory_reservation)
    _put(resources, "memorySwap", config.resources.memory_swap)
    _put(out, "resources", resources)
    return out
