"""Container config + image config + resolved facts -> OCI runtime spec. Pure: no I/O.

`build_spec` returns the ``config.json`` document (runtime-spec 1.0.2, as runc 1.1
accepts it) as plain JSON data. Everything it needs from the host, the image or the
network arrives as values from `ocirt.spec.facts`, so the same inputs always give the
same spec and the builder is tested by golden files.

Choices, after Docker (moby daemon/oci_linux.go, daemon/pkg/oci/defaults.go) unless
stated:

- Default mounts, masked and read-only paths are Docker's; the per-CPU
  ``thermal_throttle`` masks are left out (they need a host listing).
- ``mountPoints`` become ``rbind`` mounts with their propagation; rshared makes the
  rootfs propagation ``shared``, rslave makes it ``slave`` unless already shared, so
  that propagation can cross the rootfs mount (withMounts).
- Image ``Volumes`` get no mount: the path stays in the container's own writable
  rootfs, which keeps the image's content there and lives as long as the container,
  as Docker's anonymous volume does. A tmpfs would hide that content.
- Capabilities go into the bounding, effective and permitted sets only; inheritable and
  ambient stay empty (Docker since 20.10.14, CVE-2022-24769).
- Privileged means every capability in the manager's own bounding set (which may lack
  some, e.g. CAP_MAC_OVERRIDE), every host device, all devices allowed, no masked or
  read-only paths, and /sys and /sys/fs/cgroup read-write. extraCapabilities are
  dropped when privileged (Kanto).
- The domain name goes in as the ``kernel.domainname`` sysctl, not the top-level
  ``domainname`` field, which runc 1.1 ignores (it arrived with runtime-spec 1.1).
- No seccomp profile and no AppArmor profile: Debian's runc runs without them and
  Kanto sets none.
- Host network mode keeps a private UTS namespace (so the container cannot rename the
  host) with the host's hostname, as Kanto and Docker show it; other modes use hostName.
- ``RLIMIT_NOFILE`` 1024:1024 (containerd's default), clamped to the manager's hard
  limit because runc cannot raise a limit past it even as root (docs/runtime-notes.md §6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ocirt.config.model import ContainerConfig, ContainerDefinition, NetworkMode, Propagation
from ocirt.config.sizes import parse_size
from ocirt.errors import InvalidArgument
from ocirt.spec import capabilities as caps
from ocirt.spec.facts import (
    DEFAULT_PATH,
    BundlePaths,
    HostDevice,
    HostFacts,
    ImageConfig,
    NetworkAttachment,
    UserIds,
)

OCI_VERSION = "1.0.2"

ANNOTATION_STOP_SIGNAL = "org.opencontainers.image.stopSignal"
ANNOTATION_EXPOSED_PORTS = "org.opencontainers.image.exposedPorts"

# containerd's default; Docker leaves it to the daemon's own limit.
DEFAULT_RLIMITS: tuple[tuple[str, int, int], ...] = (("RLIMIT_NOFILE", 1024, 1024),)

SHM_SIZE = 64 * 1024 * 1024

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


def _rule(
    allow: bool, type_: str, major: int | None, minor: int | None, access: str
) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": allow, "type": type_}
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    rule["access"] = access
    return rule


# Docker's default device cgroup (daemon/pkg/oci/defaults.go), then the pty rules that
# runc and crun add on their own (/dev/pts/*, /dev/ptmx) written out, so that a tty
# works whatever the runtime. /dev/fuse (10:229) stays denied unless mapped.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    _rule(True, "c", 1, 5, "rwm"),
    _rule(True, "c", 1, 3, "rwm"),
    _rule(True, "c", 1, 9, "rwm"),
    _rule(True, "c", 1, 8, "rwm"),
    _rule(True, "c", 5, 0, "rwm"),
    _rule(True, "c", 5, 1, "rwm"),
    _rule(True, "c", 136, None, "rwm"),
    _rule(True, "c", 5, 2, "rwm"),
    _rule(False, "c", 10, 229, "rwm"),
)


def _default_mounts(privileged: bool) -> list[dict[str, Any]]:
    sys_ro = [] if privileged else ["ro"]
    return [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", *sys_ro],
        },
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": [*sys_ro, "nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={SHM_SIZE}"],
        },
    ]


def _bind(source: str, destination: str, propagation: str) -> dict[str, Any]:
    return {
        "destination": destination,
        "type": "bind",
        "source": source,
        "options": ["rbind", propagation],
    }


def _depth(path: str) -> int:
    return len([part for part in path.split("/") if part])


def _mounts(config: ContainerConfig, paths: BundlePaths) -> tuple[list[dict[str, Any]], str | None]:
    """All mounts in order, and the rootfs propagation the user mounts need."""
    user = [_bind(m.source, m.destination, m.propagation.value) for m in config.mount_points]
    user_dests = {m.destination.rstrip("/") or "/" for m in config.mount_points}
    network_files = [
        (paths.hosts, "/etc/hosts"),
        (paths.resolv_conf, "/etc/resolv.conf"),
        (paths.hostname, "/etc/hostname"),
    ]
    # A user mount on the same destination wins over a generated file (Docker NetworkMounts).
    extra = [
        _bind(src, dst, "rprivate")
        for src, dst in network_files
        if src is not None and dst not in user_dests
    ]
    # Parents before children, so a mount is not hidden by one on its parent (sortMounts).
    ordered = sorted(extra + user, key=lambda m: _depth(str(m["destination"])))
    defaults = [m for m in _default_mounts(config.privileged) if m["destination"] not in user_dests]

    rootfs_propagation: str | None = None
    for m in config.mount_points:
        if m.propagation in (Propagation.RSHARED, Propagation.SHARED):
            rootfs_propagation = "shared"
        elif m.propagation in (Propagation.RSLAVE, Propagation.SLAVE) and (
            rootfs_propagation != "shared"
        ):
            rootfs_propagation = "slave"
    return defaults + ordered, rootfs_propagation


def _capabilities(config: ContainerConfig, host: HostFacts) -> list[str]:
    if config.privileged:
        return list(host.capabilities)
    extra = [caps.normalize(name) for name in config.extra_capabilities]
    held = set(host.capabilities)
    missing = [name for name in extra if name not in held]
    if missing:
        raise InvalidArgument(
            "the host cannot grant the capabilities "
            + ", ".join(missing)
            + " (not in the container manager's bounding set)"
        )
    # A default the manager lacks is left out rather than failing every container.
    base = [name for name in caps.DEFAULT_CAPABILITIES if name in held]
    return list(caps.merge(base, extra))


def _device_entry(device: HostDevice, path: str) -> dict[str, Any]:
    return {
        "path": path,
        "type": device.type,
        "major": device.major,
        "minor": device.minor,
        "fileMode": device.file_mode,
        "uid": device.uid,
        "gid": device.gid,
    }


def _devices(
    config: ContainerConfig, host: HostFacts, mapped: Mapping[str, HostDevice]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """linux.devices and linux.resources.devices."""
    nodes: list[dict[str, Any]] = []
    rules: list[dict[str, Any]]
    if config.privileged:
        nodes = [_device_entry(d, d.path) for d in host.devices]
        rules = [{"allow": True, "access": "rwm"}]
    else:
        rules = [dict(r) for r in DEFAULT_DEVICE_RULES]
    for dev in config.devices:
        fact = mapped.get(dev.path_on_host)
        if fact is None:
            raise InvalidArgument(f"no device information for {dev.path_on_host}")
        access = "".join(c for c in "rwm" if c in dev.cgroup_permissions)
        if not access or len(access) != len(dev.cgroup_permissions):
            raise InvalidArgument(
                f"invalid cgroup permissions {dev.cgroup_permissions!r} for device "
                f"{dev.path_on_host}: use a combination of r, w and m"
            )
        nodes = [n for n in nodes if n["path"] != dev.path_in_container]
        nodes.append(_device_entry(fact, dev.path_in_container))
        if not config.privileged:
            rules.append(_rule(True, fact.type, fact.major, fact.minor, access))
    return nodes, rules


def _memory(config: ContainerConfig) -> dict[str, int]:
    res = config.resources
    if not (res.memory or res.memory_reservation or res.memory_swap):
        return {}
    memory: dict[str, int] = {}
    limit = parse_size(res.memory) if res.memory else None
    if limit is not None:
        memory["limit"] = limit
    if res.memory_reservation:
        memory["reservation"] = parse_size(res.memory_reservation)
    if res.memory_swap.strip() == "-1":
        memory["swap"] = -1
    elif res.memory_swap:
        memory["swap"] = parse_size(res.memory_swap)
    elif limit is not None:
        # Kanto FillMemorySwap and Docker: unset swap means as much swap as memory.
        memory["swap"] = 2 * limit
    return memory


def _set_env(env: list[str], entries: Sequence[str]) -> None:
    """Replace-or-append by variable name; a bare ``NAME`` unsets it."""
    for entry in entries:
        name, sep, _ = entry.partition("=")
        index = next((i for i, e in enumerate(env) if e.partition("=")[0] == name), None)
        if not sep:
            if index is not None:
                del env[index]
        elif index is None:
            env.append(entry)
        else:
            env[index] = entry


def _env(config: ContainerConfig, image: ImageConfig, hostname: str) -> list[str]:
    # Docker's CreateDaemonEnvironment order: defaults first, then the image's and the
    # user's values replace them in place.
    env = [DEFAULT_PATH, f"HOSTNAME={hostname}"]
    if config.tty:
        env.append("TERM=xterm")
    _set_env(env, image.env)
    _set_env(env, config.env)
    return env


def _args(config: ContainerConfig, image: ImageConfig) -> list[str]:
    # `docker run IMAGE ARGS...`: user args replace Cmd only, never the Entrypoint.
    args = [*image.entrypoint, *(config.cmd if config.cmd else image.cmd)]
    if not args:
        raise InvalidArgument("no command specified: the image has none and the config none")
    return args


def _rlimits(host: HostFacts) -> list[dict[str, Any]]:
    out = []
    for name, soft, hard in DEFAULT_RLIMITS:
        ceiling = host.hard_rlimits.get(name)
        if ceiling is not None and ceiling >= 0:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        out.append({"type": name, "hard": hard, "soft": soft})
    return out


def _annotations(image: ImageConfig) -> dict[str, str]:
    annotations = dict(image.labels)
    if image.stop_signal:
        annotations[ANNOTATION_STOP_SIGNAL] = image.stop_signal
    if image.exposed_ports:
        annotations[ANNOTATION_EXPOSED_PORTS] = ",".join(image.exposed_ports)
    return annotations


def build_spec(
    container: ContainerConfig | ContainerDefinition,
    *,
    image: ImageConfig,
    user: UserIds,
    host: HostFacts,
    network: NetworkAttachment,
    paths: BundlePaths,
    devices: Mapping[str, HostDevice] | None = None,
) -> dict[str, Any]:
    """The runtime spec for one container.

    `devices` maps each ``pathOnHost`` of the config's devices to what stat() found.
    Raises `InvalidArgument` for what cannot be granted (an extra capability outside the
    manager's bounding set, a device without facts) or run (no command at all).
    """
    config = container.config if isinstance(container, ContainerDefinition) else container
    if network.is_host != (config.network_mode is NetworkMode.HOST):
        raise InvalidArgument(
            f"network attachment does not match network mode {config.network_mode.value}"
        )
    hostname = host.hostname if network.is_host else config.host_name
    if not hostname:
        raise InvalidArgument("a hostname is required for the container's UTS namespace")

    capability_list = _capabilities(config, host)
    device_nodes, device_rules = _devices(config, host, devices or {})
    mounts, rootfs_propagation = _mounts(config, paths)

    user_doc: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        user_doc["additionalGids"] = list(user.additional_gids)

    process: dict[str, Any] = {
        "terminal": config.tty,
        "user": user_doc,
        "args": _args(config, image),
        "env": _env(config, image, hostname),
        "cwd": image.working_dir or "/",
        "capabilities": {
            "bounding": capability_list,
            "effective": list(capability_list),
            "permitted": list(capability_list),
        },
        "rlimits": _rlimits(host),
        "noNewPrivileges": False,
    }

    namespaces: list[dict[str, str]] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}]
    namespaces.append({"type": "mount"})
    if network.netns_path is not None:
        namespaces.append({"type": "network", "path": network.netns_path})

    resources: dict[str, Any] = {"devices": device_rules}
    memory = _memory(config)
    if memory:
        resources["memory"] = memory

    linux: dict[str, Any] = {"resources": resources, "namespaces": namespaces}
    if config.domain_name:
        # runc 1.1 (spec 1.0.2) ignores the top-level "domainname" field; the namespaced
        # sysctl works there and in later runtimes, and is allowed with a private UTS ns.
        linux["sysctl"] = {"kernel.domainname": config.domain_name}
    if paths.cgroups_path:
        linux["cgroupsPath"] = paths.cgroups_path
    if device_nodes:
        linux["devices"] = device_nodes
    if rootfs_propagation is not None:
        linux["rootfsPropagation"] = rootfs_propagation
    if not config.privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": paths.rootfs, "readonly": False},
        "hostname": hostname,
    }
    spec["mounts"] = mounts
    annotations = _annotations(image)
    if annotations:
        spec["annotations"] = annotations
    spec["linux"] = linux
    return spec
