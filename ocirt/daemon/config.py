"""The daemon configuration: Kanto's `config.json` format (docs/kanto-compatibility.md §10). Pure.

`parse_daemon_config(dict)` returns typed settings plus warnings. Every key Kanto reads
(daemon_config.go) or ships in its documented template and test fixtures is accepted, so a
device's own config.json starts ocirt unchanged. Keys that have a meaning without containerd
are honoured; the containerd-only ones draw one warning that lists them all; Kanto's
directory aliases (`containers.*_dir`, `network.*_dir`) are silent when they agree with
`manager` and warned about when they do not. Any other key is an error that names it, so a
typo never silently leaves a default in place. Defaults are Kanto's
(daemon_config_default.go). Durations are Go duration strings (`20s`, `250ms`, `1h2m3s`)
or a number of seconds. Reading the file, and laying the daemon's flags over it
(`with_overrides`), is the caller's job (`load_config_file` in `ocirt.daemon.main`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TypeVar

from ocirt.config.durations import parse_duration
from ocirt.errors import InvalidArgument
from ocirt.manager.types import DEFAULT_STOP_TIMEOUT
from ocirt.network.settings import BridgeOptions, options_from_kanto
from ocirt.things.protocol import MAX_PAYLOAD
from ocirt.updateagent.settings import UpdateAgentSettings

DEFAULT_CONFIG_FILE = "/etc/container-management/config.json"
DEFAULT_HOME = "/var/lib/container-management"
DEFAULT_EXEC_ROOT = "/var/run/container-management"
DEFAULT_CTR_DIR = "/etc/container-management/containers"


class LogLevel(Enum):
    ERROR = "ERROR"
    WARN = "WARN"
    INFO = "INFO"
    DEBUG = "DEBUG"
    TRACE = "TRACE"


class DeploymentMode(Enum):
    INIT = "init"  # descriptors are processed at the first start only
    UPDATE = "update"  # at every start: create new ones, update existing ones


@dataclass(frozen=True, slots=True)
class LogSettings:
    # "" logs to stderr (the journal under systemd).
    file: str = ""
    level: LogLevel = LogLevel.INFO
    file_count: int = 5
    file_size_mb: int = 2
    max_age_days: int = 28
    syslog: bool = False


@dataclass(frozen=True, slots=True)
class ManagerConfig:
    """The `manager` section (named apart from `ocirt.manager.manager.ManagerSettings`,
    which the composition root builds from it)."""

    home_dir: str = DEFAULT_HOME
    exec_root_dir: str = DEFAULT_EXEC_ROOT
    default_ctrs_stop_timeout: float = DEFAULT_STOP_TIMEOUT


@dataclass(frozen=True, slots=True)
class TransportSettings:
    """TLS material (PEM file paths)."""

    root_ca: str = ""
    client_cert: str = ""
    client_key: str = ""


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One entry of `containers.registry_configurations`, as the file spells it
    (`ocirt.image.registry.auth.RegistryConfig` is what the image store gets from it)."""

    user_id: str = ""
    password: str = ""
    transport: TransportSettings = field(default_factory=TransportSettings)


@dataclass(frozen=True, slots=True)
class ContainersSettings:
    insecure_registries: tuple[str, ...] = ("localhost",)
    registry_configurations: Mapping[str, RegistryEntry] = field(default_factory=dict)
    image_dec_keys: tuple[str, ...] = ()
    image_dec_recipients: tuple[str, ...] = ()
    image_expiry: float = 744 * 3600.0
    image_expiry_disable: bool = False
    # ocirt's additions: a pull that gets no data for this long ends (and resumes from its
    # partial next time); one that is not done within the deadline ends too.
    pull_stall_timeout: float = 60.0
    pull_deadline: float = 1800.0


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    type: str = "bridge"
    default_bridge: BridgeOptions = field(default_factory=BridgeOptions)
    # Kanto's `default_bridge.disable`: no bridge at all, containers run in host mode only.
    bridge_disabled: bool = False


@dataclass(frozen=True, slots=True)
class ThingsSettings:
    enable: bool = True
    home_dir: str = DEFAULT_HOME
    features: tuple[str, ...] = ("ContainerFactory", "SoftwareUpdatable", "Metrics")


@dataclass(frozen=True, slots=True)
class DeploymentSettings:
    enable: bool = True
    mode: DeploymentMode = DeploymentMode.UPDATE
    ctr_dir: str = DEFAULT_CTR_DIR
    # Where the `init` mode's marker lives; when the file leaves it out, manager.home_dir
    # (where ocirt kept the marker before it read this key).
    home_dir: str = DEFAULT_HOME


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    broker_url: str = "tcp://localhost:1883"
    keep_alive: float = 20.0
    client_username: str = ""
    client_password: str = ""
    connect_timeout: float = 30.0
    acknowledge_timeout: float = 15.0
    subscribe_timeout: float = 15.0
    unsubscribe_timeout: float = 5.0
    disconnect_timeout: float = 0.25
    transport: TransportSettings = field(default_factory=TransportSettings)


@dataclass(frozen=True, slots=True)
class LimitsSettings:
    """The `limits` section: ocirt's own bounds on what others may make the daemon hold
    (Kanto has no such section; docs/compatibility.md)."""

    # Biggest MQTT message read; a larger one is skipped unread and answered 413.
    mqtt_max_message_size: int = 1024 * 1024
    # Commands waiting for a worker, per lane; one more is answered 503 at once.
    command_queue_size: int = 64
    # Workers for creates (which may pull) and for everything else.
    create_workers: int = 2
    control_workers: int = 4
    # Local API: open connections, and seconds a connection may stay silent.
    api_max_connections: int = 64
    api_idle_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    log: LogSettings = field(default_factory=LogSettings)
    manager: ManagerConfig = field(default_factory=ManagerConfig)
    containers: ContainersSettings = field(default_factory=ContainersSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    things: ThingsSettings = field(default_factory=ThingsSettings)
    deployment: DeploymentSettings = field(default_factory=DeploymentSettings)
    connection: ConnectionSettings = field(default_factory=ConnectionSettings)
    update_agent: UpdateAgentSettings = field(default_factory=UpdateAgentSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    warnings: tuple[str, ...] = ()


# ---- the parser -------------------------------------------------------------------------

# Settings of containerd and libnetwork, which ocirt does not use (daemon_config.go).
_CONTAINERD_ONLY = {
    "manager": ("container_client_sid", "network_manager_sid"),
    "containers": ("default_ns", "address_path", "runc_runtime", "lease_id"),
}
# Sections Kanto reads that have no counterpart in ocirt.
_NOT_IMPLEMENTED_SECTIONS = frozenset({"local_connection"})
_T = TypeVar("_T")


@dataclass
class _Notes:
    """What one parse has to say besides the settings."""

    warnings: list[str] = field(default_factory=list)
    containerd: list[str] = field(default_factory=list)


class _Section:
    """Typed reads from one section, remembering which keys were consumed."""

    def __init__(self, name: str, raw: object, notes: _Notes) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            where = f"section {name}" if name else "the configuration"
            raise InvalidArgument(f"{where} must be a JSON object")
        self.name = name
        self.raw: dict[str, object] = raw
        self.notes = notes
        self.warnings = notes.warnings
        self.used: set[str] = set()
        for key in _CONTAINERD_ONLY.get(name, ()):
            if key in raw:
                self.text(key, "")
                notes.containerd.append(f"{name}.{key}")

    def _get(self, key: str, default: _T, check: Callable[[object], _T | None], kind: str) -> _T:
        self.used.add(key)
        if key not in self.raw or self.raw[key] is None:
            return default
        value = check(self.raw[key])
        if value is None:
            raise InvalidArgument(f"{self.name}.{key} must be {kind}")
        return value

    def text(self, key: str, default: str) -> str:
        return self._get(key, default, lambda v: v if isinstance(v, str) else None, "a string")

    def flag(self, key: str, default: bool) -> bool:
        return self._get(key, default, lambda v: v if isinstance(v, bool) else None, "a boolean")

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        def check(v: object) -> int | None:
            if isinstance(v, bool):
                return None
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            return v if isinstance(v, int) and v >= minimum else None

        return self._get(key, default, check, f"an integer >= {minimum}")

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        def check(v: object) -> tuple[str, ...] | None:
            if isinstance(v, list) and all(isinstance(x, str) for x in v):
                return tuple(str(x) for x in v)
            return None

        return self._get(key, default, check, "a list of strings")

    def duration(self, key: str, default: float) -> float:
        def check(v: object) -> float | None:
            if isinstance(v, bool):
                return None
            if isinstance(v, int | float):
                seconds = float(v)
            elif isinstance(v, str):
                try:
                    seconds = parse_duration(v.strip())
                except InvalidArgument as exc:
                    raise InvalidArgument(f"{self.name}.{key}: {exc.message}") from exc
            else:
                return None
            return seconds if seconds >= 0 else None

        return self._get(key, default, check, "a duration like 30s, or a number of seconds")

    def section(self, key: str) -> _Section:
        self.used.add(key)
        name = f"{self.name}.{key}" if self.name else key
        return _Section(name, self.raw.get(key), self.notes)

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            names = ", ".join(f"{self.name}.{k}" if self.name else k for k in unknown)
            raise InvalidArgument(f"unknown configuration keys: {names}")


def _transport(section: _Section) -> TransportSettings:
    result = TransportSettings(
        root_ca=section.text("root_ca", ""),
        client_cert=section.text("client_cert", ""),
        client_key=section.text("client_key", ""),
    )
    section.finish()
    return result


def _log(s: _Section) -> LogSettings:
    level_text = s.text("log_level", "INFO").upper()
    try:
        level = LogLevel(level_text)
    except ValueError:
        raise InvalidArgument(
            f"log.log_level must be one of ERROR, WARN, INFO, DEBUG, TRACE, not {level_text!r}"
        ) from None
    result = LogSettings(
        file=s.text("log_file", ""),
        level=level,
        file_count=s.integer("log_file_count", 5, minimum=1),
        file_size_mb=s.integer("log_file_size", 2, minimum=1),
        max_age_days=s.integer("log_file_max_age", 28),
        syslog=s.flag("syslog", False),
    )
    s.finish()
    return result


def _manager(s: _Section) -> ManagerConfig:
    result = ManagerConfig(
        home_dir=s.text("home_dir", DEFAULT_HOME),
        exec_root_dir=s.text("exec_root_dir", DEFAULT_EXEC_ROOT),
        default_ctrs_stop_timeout=s.duration("default_ctrs_stop_timeout", DEFAULT_STOP_TIMEOUT),
    )
    for key in ("home_dir", "exec_root_dir"):
        if not getattr(result, key).startswith("/"):
            raise InvalidArgument(f"manager.{key} must be an absolute path")
    s.finish()
    return result


def _alias_dir(s: _Section, key: str, manager: ManagerConfig, manager_key: str) -> None:
    """Kanto's per-component copies of the manager's directories (containerd's and
    libnetwork's own state). ocirt keeps all its state under `manager`: say so only when
    the copy names another place."""
    value = s.text(key, "")
    ours = str(getattr(manager, manager_key))
    if value and value.rstrip("/") != ours.rstrip("/"):
        s.warnings.append(
            f"{s.name}.{key} ({value}) is not used: ocirt keeps this state under "
            f"manager.{manager_key} ({ours})"
        )


def _verifier_config(s: _Section) -> None:
    # Kanto's code reads an object ({"configDir": ...}); its documented template and its
    # flag write `key=value,key=value`. Both are accepted; neither is used (see the type).
    s.used.add("image_verifier_config")
    value = s.raw.get("image_verifier_config")
    if value is None or isinstance(value, str):
        return
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        return
    raise InvalidArgument(
        "containers.image_verifier_config must be an object of strings or key=value pairs"
    )


def _containers(s: _Section, manager: ManagerConfig) -> ContainersSettings:
    registries: dict[str, RegistryEntry] = {}
    configs = s.section("registry_configurations")
    for host in list(configs.raw):
        entry = configs.section(host)
        creds = entry.section("credentials")
        parsed = RegistryEntry(
            user_id=creds.text("user_id", ""),
            password=creds.text("password", ""),
            transport=_transport(entry.section("transport")),
        )
        creds.finish()
        entry.finish()
        if host:
            registries[host] = parsed
        elif parsed != RegistryEntry():
            # Kanto's template ships this entry with the host left for the user to fill in.
            s.warnings.append(
                "containers.registry_configurations: the entry without a host name is ignored"
            )
    configs.finish()
    verifier = s.text("image_verifier_type", "none")
    if verifier.lower() not in ("", "none"):
        # Refused rather than ignored: silently skipping a signature check is unsafe.
        raise InvalidArgument(f"containers.image_verifier_type {verifier!r} is not supported")
    _verifier_config(s)
    _alias_dir(s, "home_dir", manager, "home_dir")
    _alias_dir(s, "exec_root_dir", manager, "exec_root_dir")
    insecure = s.strings("insecure_registries", ("localhost",))
    if "" in insecure:
        raise InvalidArgument("containers.insecure_registries must be a list of host names")
    result = ContainersSettings(
        insecure_registries=insecure,
        registry_configurations=registries,
        image_dec_keys=s.strings("image_dec_keys", ()),
        image_dec_recipients=s.strings("image_dec_recipients", ()),
        image_expiry=s.duration("image_expiry", 744 * 3600.0),
        image_expiry_disable=s.flag("image_expiry_disable", False),
        pull_stall_timeout=s.duration("pull_stall_timeout", 60.0),
        pull_deadline=s.duration("pull_deadline", 1800.0),
    )
    if result.pull_stall_timeout <= 0 or result.pull_deadline <= 0:
        raise InvalidArgument("containers.pull_stall_timeout and pull_deadline must be > 0s")
    s.finish()
    return result


def _network(s: _Section, manager: ManagerConfig) -> NetworkSettings:
    kind = s.text("type", "bridge")
    if kind != "bridge":
        raise InvalidArgument(f"network.type {kind!r} is not supported (only bridge)")
    _alias_dir(s, "home_dir", manager, "home_dir")
    _alias_dir(s, "exec_root_dir", manager, "exec_root_dir")
    bridge = s.section("default_bridge")
    disabled = bridge.flag("disable", False)
    options = options_from_kanto({k: v for k, v in bridge.raw.items() if k != "disable"})
    s.finish()
    return NetworkSettings(type=kind, default_bridge=options, bridge_disabled=disabled)


# The keys of Kanto's connection block; `things.connection` is where Kanto kept it before
# the top-level `connection` (its documented template and test fixture still carry it).
_CONNECTION_KEYS = frozenset(
    {
        "broker_url",
        "keep_alive",
        "disconnect_timeout",
        "client_username",
        "client_password",
        "connect_timeout",
        "acknowledge_timeout",
        "subscribe_timeout",
        "unsubscribe_timeout",
        "transport",
    }
)


def _old_connection(s: _Section) -> None:
    if s.raw.get("connection") is None:
        s.used.add("connection")
        return
    old = s.section("connection")
    old.used.update(_CONNECTION_KEYS & set(old.raw))
    if "transport" in old.raw:
        _transport(old.section("transport"))
    old.finish()
    # Kanto itself no longer reads it (its things client takes the top-level block).
    s.warnings.append(
        "things.connection is not used (Kanto reads the top-level connection section)"
    )


def _things(s: _Section) -> ThingsSettings:
    _old_connection(s)
    result = ThingsSettings(
        enable=s.flag("enable", True),
        home_dir=s.text("home_dir", DEFAULT_HOME),
        features=s.strings("features", ("ContainerFactory", "SoftwareUpdatable", "Metrics")),
    )
    for feature in result.features if "features" in s.raw else ():
        if feature not in ("ContainerFactory", "SoftwareUpdatable", "Metrics"):
            raise InvalidArgument(f"things.features: unknown feature {feature!r}")
    s.finish()
    return result


def _deployment(s: _Section, manager: ManagerConfig) -> DeploymentSettings:
    mode_text = s.text("mode", "update")
    try:
        mode = DeploymentMode(mode_text.lower())
    except ValueError:
        raise InvalidArgument(
            f"deployment.mode must be init or update, not {mode_text!r}"
        ) from None
    result = DeploymentSettings(
        enable=s.flag("enable", True),
        mode=mode,
        ctr_dir=s.text("ctr_dir", DEFAULT_CTR_DIR),
        home_dir=s.text("home_dir", "") or manager.home_dir,
    )
    if not result.home_dir.startswith("/"):
        raise InvalidArgument("deployment.home_dir must be an absolute path")
    s.finish()
    return result


def _grpc_server(s: _Section) -> None:
    s.text("protocol", "unix")
    s.text("address_path", "")
    s.finish()
    if s.raw:
        s.warnings.append(
            "grpc_server is not used: ocirt has no gRPC API (its CLI talks to the local API "
            "socket ocirt.sock in manager.exec_root_dir)"
        )


_PLAIN_SCHEMES = ("tcp", "mqtt")
_TLS_SCHEMES = ("ssl", "tls", "mqtts", "mqtt+ssl", "tcps")
_SCHEMES = _PLAIN_SCHEMES + _TLS_SCHEMES


def _connection(s: _Section) -> ConnectionSettings:
    url = s.text("broker_url", "tcp://localhost:1883")
    scheme = url.partition("://")[0].lower()
    if "://" not in url or scheme not in _SCHEMES:
        raise InvalidArgument(
            f"connection.broker_url {url!r} must start with one of "
            + ", ".join(f"{x}://" for x in _SCHEMES)
        )
    result = ConnectionSettings(
        broker_url=url,
        keep_alive=s.duration("keep_alive", 20.0),
        client_username=s.text("client_username", ""),
        client_password=s.text("client_password", ""),
        connect_timeout=s.duration("connect_timeout", 30.0),
        acknowledge_timeout=s.duration("acknowledge_timeout", 15.0),
        subscribe_timeout=s.duration("subscribe_timeout", 15.0),
        unsubscribe_timeout=s.duration("unsubscribe_timeout", 5.0),
        disconnect_timeout=s.duration("disconnect_timeout", 0.25),
        transport=_transport(s.section("transport")),
    )
    s.finish()
    transport = result.transport
    if transport.client_key and not transport.client_cert:
        raise InvalidArgument(
            "connection.transport.client_key is set without connection.transport.client_cert"
        )
    if scheme not in _TLS_SCHEMES and (
        transport.root_ca or transport.client_cert or transport.client_key
    ):
        s.warnings.append(
            f"connection.transport is ignored: connection.broker_url {url!r} does not use "
            "TLS (" + ", ".join(f"{x}://" for x in _TLS_SCHEMES) + ")"
        )
    return result


def _update_agent(s: _Section) -> UpdateAgentSettings:
    """Kanto's update_agent keys, plus ocirt's auto_apply and activation checks."""
    defaults = UpdateAgentSettings()
    # `system_containers` is the code's name, `containers` the documentation's;
    # `verbose_inventory` is a spelling Kanto's own test fixture carries.
    system = s.strings("containers", defaults.system_containers)
    verbose = s.flag("verbose_inventory", defaults.verbose_inventory_report)
    result = UpdateAgentSettings(
        enable=s.flag("enable", defaults.enable),
        domain=s.text("domain", defaults.domain),
        system_containers=s.strings("system_containers", system),
        verbose_inventory_report=s.flag("verbose_inventory_report", verbose),
        auto_apply=s.flag("auto_apply", defaults.auto_apply),
        activation_monitor=s.duration("activation_monitor", defaults.activation_monitor),
        activation_timeout=s.duration("activation_timeout", defaults.activation_timeout),
    )
    if not result.domain or "/" in result.domain or "+" in result.domain or "#" in result.domain:
        raise InvalidArgument("update_agent.domain must be a non-empty name without / + #")
    s.finish()
    return result


def _limits(s: _Section) -> LimitsSettings:
    d = LimitsSettings()
    result = LimitsSettings(
        mqtt_max_message_size=s.integer("mqtt_max_message_size", d.mqtt_max_message_size, 1024),
        command_queue_size=s.integer("command_queue_size", d.command_queue_size, 1),
        create_workers=s.integer("create_workers", d.create_workers, 1),
        control_workers=s.integer("control_workers", d.control_workers, 1),
        api_max_connections=s.integer("api_max_connections", d.api_max_connections, 1),
        api_idle_timeout=s.duration("api_idle_timeout", d.api_idle_timeout),
    )
    if result.mqtt_max_message_size > MAX_PAYLOAD:
        # Above it the Ditto parser refuses anyway (400), after reading the whole message.
        raise InvalidArgument(f"limits.mqtt_max_message_size must be at most {MAX_PAYLOAD}")
    if result.api_idle_timeout <= 0:
        raise InvalidArgument("limits.api_idle_timeout must be more than 0s")
    s.finish()
    return result


def parse_daemon_config(raw: object) -> DaemonConfig:
    """Kanto's config.json (already JSON-decoded) -> DaemonConfig. Raises InvalidArgument."""
    notes = _Notes()
    top = _Section("", raw, notes)
    for name in sorted(_NOT_IMPLEMENTED_SECTIONS & set(top.raw)):
        top.used.add(name)
        notes.warnings.append(f"{name} is not supported by ocirt; the section is ignored")
    log = _log(top.section("log"))
    manager = _manager(top.section("manager"))
    config = DaemonConfig(
        log=log,
        manager=manager,
        containers=_containers(top.section("containers"), manager),
        network=_network(top.section("network"), manager),
        things=_things(top.section("things")),
        deployment=_deployment(top.section("deployment"), manager),
        connection=_connection(top.section("connection")),
        update_agent=_update_agent(top.section("update_agent")),
        limits=_limits(top.section("limits")),
    )
    _grpc_server(top.section("grpc_server"))
    top.finish()
    warnings = list(notes.warnings)
    if notes.containerd:
        # One line for them all: Kanto's own template carries every one of them.
        warnings.insert(
            0,
            "not used, they configure containerd, which ocirt does not need: "
            + ", ".join(notes.containerd),
        )
    return replace(config, warnings=tuple(warnings))


def with_overrides(raw: object, overrides: Mapping[tuple[str, ...], object]) -> object:
    """`raw` (a decoded config file) with each `(section, ..., key) -> value` set, for the
    daemon's flags, which win over the file. Sections are created as needed; `raw` is not
    changed. A non-object where a section belongs is left for the parser to report."""
    if not overrides:
        return raw
    if not isinstance(raw, dict):
        return raw
    top: dict[str, object] = _copy_tree(raw)
    for path, value in overrides.items():
        node = top
        for name in path[:-1]:
            child = node.get(name)
            if child is None:
                child = node[name] = {}
            if not isinstance(child, dict):
                break  # the parser names the section that is not an object
            node = child
        else:
            node[path[-1]] = value
    return top


def _copy_tree(raw: dict[str, object]) -> dict[str, object]:
    return {k: _copy_tree(v) if isinstance(v, dict) else v for k, v in raw.items()}
