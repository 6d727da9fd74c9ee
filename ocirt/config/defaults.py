"""Kanto's defaults for a container definition (FillDefaults + FillMemorySwap). Pure: no I/O.

`fill_defaults` is the one place defaults are decided. The parsers call it, and the manager
calls it again on definitions it reloads, as Kanto refills defaults at daemon start. It is
idempotent: a filled definition comes back equal.

Defaults that the typed model cannot leave open (network mode, restart policy, log driver
and mode, propagation, protocol) are the model's own field defaults; the parsers fall
back to them when a member is absent or empty, which is when Kanto fills them too.
"""

from __future__ import annotations

from dataclasses import replace

from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    Device,
    LogConfig,
    LogDriver,
    LogMode,
    PortMapping,
    Resources,
)
from ocirt.config.sizes import scale_size
from ocirt.errors import ValidationError

DEFAULT_MAX_FILES = 2
DEFAULT_MAX_SIZE = "100M"
DEFAULT_MAX_BUFFER_SIZE = "1M"
DEFAULT_HOST_IP = "0.0.0.0"
DEFAULT_CGROUP_PERMISSIONS = "rwm"

# The kernel keeps at most 64 bytes of a UTS host or domain name (sethostname(2) and the
# kernel.domainname sysctl answer EINVAL beyond); 63 keeps a derived name one DNS label.
UTS_NAME_MAX = 64
DEFAULT_UTS_NAME_LEN = 63
HOST_SUFFIX = "-host"
DOMAIN_SUFFIX = "-domain"


def default_uts_name(name: str, suffix: str) -> str:
    """``<name><suffix>``, with the name cut so that the whole stays within 63 characters.

    Kanto's ``<name>-host`` is 65 characters for a valid 60-character name, which runc can
    never set: the container would be accepted and fail at every start. Docker cuts
    instead (the id's first 12 characters); ocirt keeps the name's start, the readable part.
    A cut that ends in "." or "-" loses those too, so no label ends empty or with a hyphen.
    """
    room = DEFAULT_UTS_NAME_LEN - len(suffix)
    if len(name) <= room:
        return name + suffix
    return name[:room].rstrip(".-") + suffix


def fill_log(log: LogConfig) -> LogConfig:
    if log.driver is LogDriver.JSON_FILE:
        log = replace(
            log,
            max_files=log.max_files or DEFAULT_MAX_FILES,
            max_size=log.max_size or DEFAULT_MAX_SIZE,
        )
    else:
        # Kanto discards file options for the none driver.
        log = replace(log, max_files=0, max_size="")
    if log.mode is LogMode.BLOCKING:
        return replace(log, max_buffer_size="")
    return replace(log, max_buffer_size=log.max_buffer_size or DEFAULT_MAX_BUFFER_SIZE)


def fill_resources(resources: Resources) -> Resources:
    """FillMemorySwap: swap defaults to twice the memory; "-1" (unlimited) is kept.

    Kanto turns "-1" into "" after using it, which a later refill would read as "unset";
    keeping "-1" makes filling idempotent, and the spec builder reads it as unlimited.
    """
    if resources.memory and not resources.memory_swap:
        try:
            return replace(resources, memory_swap=scale_size(resources.memory, 2))
        except ValidationError:
            # Malformed memory: validation reports it with Kanto's message.
            return resources
    return resources


def _fill_device(device: Device) -> Device:
    return replace(
        device,
        path_in_container=device.path_in_container or device.path_on_host,
        cgroup_permissions=device.cgroup_permissions or DEFAULT_CGROUP_PERMISSIONS,
    )


def _fill_port(port: PortMapping) -> PortMapping:
    return replace(
        port,
        host_ip=port.host_ip or DEFAULT_HOST_IP,
        host_port_end=port.host_port_end or port.host_port,
    )


def fill_config(config: ContainerConfig, name: str | None = None) -> ContainerConfig:
    """The config with Kanto's defaults; domain and host names only when `name` is known."""
    filled = replace(
        config,
        devices=tuple(_fill_device(device) for device in config.devices),
        port_mappings=tuple(_fill_port(port) for port in config.port_mappings),
        log=fill_log(config.log),
        resources=fill_resources(config.resources),
    )
    if name:
        filled = replace(
            filled,
            domain_name=_uts_name(config.domain_name, name, DOMAIN_SUFFIX),
            host_name=_uts_name(config.host_name, name, HOST_SUFFIX),
        )
    return filled


def _uts_name(given: str, name: str, suffix: str) -> str:
    # An over-long `<name><suffix>` is Kanto's default, stored by Kanto or an earlier
    # ocirt; it could never be set, so the refill cuts it like a new default.
    if not given or (given == name + suffix and len(given) > UTS_NAME_MAX):
        return default_uts_name(name, suffix)
    return given


def fill_defaults(definition: ContainerDefinition) -> ContainerDefinition:
    """Kanto's FillDefaults and FillMemorySwap: name = id, `<name>-domain`, `<name>-host`
    (cut to 63 characters, `default_uts_name`)..."""
    name = definition.name or str(definition.id)
    return replace(definition, name=name, config=fill_config(definition.config, name))
