"""The current state: the agent and its containers as an inventory graph. Pure: no I/O.

Kanto's `toInventory`, `asSoftwareNode` and `fromContainer` (CM `containerm/updateagent`):
one APPLICATION node for the agent, one CONTAINER node per container with its
parameters in Kanto's order, left out at their defaults unless the report is verbose,
and an association from the agent to each container.
"""

from __future__ import annotations

from collections.abc import Sequence

from ocirt.config.model import ContainerConfig, Device, MountPoint, PortMapping, RestartPolicyType
from ocirt.manager.types import ContainerView, Status
from ocirt.updateagent.identify import image_version

AGENT_NAME = "Eclipse Kanto Containers Update Agent"


def go_duration(seconds: int) -> str:
    """Go's time.Duration.String() for whole seconds: 0s, 30s, 1m30s, 1h0m0s."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{sign}{minutes}m{secs}s"
    return f"{sign}{secs}s"


def device_text(device: Device) -> str:
    return ":".join(
        p for p in (device.path_on_host, device.path_in_container, device.cgroup_permissions) if p
    )


def port_text(port: PortMapping) -> str:
    out = ""
    if port.host_ip and port.host_ip != "0.0.0.0":
        out += f"{port.host_ip}:"
    if port.host_port:
        out += str(port.host_port)
        if port.host_port_end and port.host_port_end != port.host_port:
            out += f"-{port.host_port_end}"
    if port.container_port:
        out += f":{port.container_port}"
    return f"{out}/{port.proto.value}"


def mount_text(mount: MountPoint) -> str:
    return f"{mount.source}:{mount.destination}:{mount.propagation.value}"


def _config_parameters(name: str, config: ContainerConfig, verbose: bool) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []

    def add(key: str, value: str, shown: bool = True) -> None:
        if verbose or shown:
            params.append((key, value))

    add("domainName", config.domain_name, config.domain_name != f"{name}-domain")
    add("hostName", config.host_name, config.host_name != f"{name}-host")
    add("terminal", _bool(config.tty), config.tty)
    add("interactive", _bool(config.open_stdin), config.open_stdin)
    add("privileged", _bool(config.privileged), config.privileged)
    policy = config.restart_policy
    add("restartPolicy", policy.type.value, policy.type is not RestartPolicyType.UNLESS_STOPPED)
    add("restartMaxRetries", str(policy.max_retry_count), policy.max_retry_count != 0)
    add("restartTimeout", go_duration(policy.retry_timeout), policy.retry_timeout != 0)
    params.extend(("device", device_text(d)) for d in config.devices)
    params.extend(("port", port_text(p)) for p in config.port_mappings)
    add("network", config.network_mode.value, config.network_mode.value != "bridge")
    params.extend(("host", h) for h in config.extra_hosts)
    log = config.log
    add("logDriver", log.driver.value, log.driver.value != "json-file")
    add("logMaxFiles", str(log.max_files), log.max_files != 2)
    add("logMaxSize", log.max_size, bool(log.max_size) and log.max_size != "100M")
    add("logPath", log.root_dir, bool(log.root_dir))
    add("logMode", log.mode.value, log.mode.value != "blocking")
    add(
        "logMaxBufferSize",
        log.max_buffer_size,
        bool(log.max_buffer_size) and log.max_buffer_size != "1M",
    )
    res = config.resources
    # Kanto has no resources object when none is set, even in a verbose report.
    if res.memory or res.memory_reservation or res.memory_swap:
        add("memory", res.memory, bool(res.memory))
        add("memoryReservation", res.memory_reservation, bool(res.memory_reservation))
        add("memorySwap", res.memory_swap, bool(res.memory_swap))
    params.extend(("mount", mount_text(m)) for m in config.mount_points)
    params.extend(("env", e) for e in config.env)
    params.extend(("cmd", c) for c in config.cmd)
    return params


def _bool(value: bool) -> str:
    return "true" if value else "false"


def container_parameters(view: ContainerView, verbose: bool = False) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if verbose or view.image_ref:
        params.append(("image", view.image_ref))
    params.extend(_config_parameters(view.name, view.config, verbose))
    state = view.state
    running = state.status is Status.RUNNING
    params.append(("status", state.status.title))
    if verbose or (state.finished_at and not running):
        params.append(("finishedAt", state.finished_at))
    if verbose or (state.exit_code != 0 and not running):
        params.append(("exitCode", str(state.exit_code)))
    params.append(("created", view.created_at))
    if verbose or view.restart_count:
        params.append(("restartCount", str(view.restart_count)))
    if verbose or (view.manually_stopped and not running):
        params.append(("manuallyStopped", _bool(view.manually_stopped)))
    if verbose or (view.started_successfully_before and not running):
        params.append(("startedSuccessfullyBefore", _bool(view.started_successfully_before)))
    return params


def current_state(
    domain: str, version: str, containers: Sequence[ContainerView], verbose: bool = False
) -> dict[str, object]:
    agent_id = f"{domain}-update-agent"
    nodes: list[dict[str, object]] = [
        {
            "id": agent_id,
            "version": version,
            "name": AGENT_NAME,
            "parameters": [{"key": "domain", "value": domain}],
            "type": "APPLICATION",
        }
    ]
    associations = []
    for view in containers:
        node_id = f"{domain}:{view.name}"
        node: dict[str, object] = {"id": node_id, "version": image_version(view.image_ref)}
        params = container_parameters(view, verbose)
        if params:
            # Go's omitempty leaves out an empty value.
            node["parameters"] = [{"key": k, "value": v} if v else {"key": k} for k, v in params]
        node["type"] = "CONTAINER"
        nodes.append(node)
        associations.append({"sourceId": agent_id, "targetId": node_id})
    inventory: dict[str, object] = {"softwareNodes": nodes}
    if associations:
        inventory["associations"] = associations
    return inventory
