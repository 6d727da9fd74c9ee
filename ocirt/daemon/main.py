"""The composition root: read the config, wire the real adapters, serve until SIGTERM.
Does I/O (files, signals, and everything it starts).

Start order: logging, manager (store, runc, monitors) with the image store and the
bridge network, `recover()`, deployment descriptors, local API, things client. Stop
order is the reverse. Stopping the daemon leaves containers running
(docs/kanto-compatibility.md decision 10) unless `--stop-containers-on-exit` asks for Kanto's
behaviour.

Heavy modules (image store and its crypto, iptables, paho) are imported in
the functions that build them, so `ocirt --help` and the CLI stay light. This is the
only caller of `ocirt.deferred`: `run_daemon` defers the modules an idle daemon never
needs before anything imports them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from ocirt import deferred
from ocirt.daemon.config import (
    DEFAULT_CONFIG_FILE,
    DaemonConfig,
    LogLevel,
    LogSettings,
    parse_daemon_config,
    with_overrides,
)
from ocirt.errors import FailedPrecondition, InvalidArgument, OcirtError, Unavailable

if TYPE_CHECKING:
    from ocirt.daemon.deployment import Deployment
    from ocirt.daemon.localapi import LocalApi
    from ocirt.daemon.pull import HelperPull
    from ocirt.health.gate import ActivationGate
    from ocirt.health.monitor import HealthMonitor
    from ocirt.image.registry.auth import RegistryAccess
    from ocirt.image.service import ImageService
    from ocirt.lanes import Lanes
    from ocirt.manager.manager import Manager
    from ocirt.manager.ports import NetworkProvider
    from ocirt.metrics.feature import MetricsFeature
    from ocirt.metrics.service import MetricsService
    from ocirt.network.bridge import BridgeNetwork
    from ocirt.swupdate.feature import SoftwareUpdatable
    from ocirt.things.mqtt import MqttSettings, ThingsClient
    from ocirt.updateagent.service import UpdateAgentService

log = logging.getLogger("ocirt.daemon")

_Part = TypeVar("_Part")

_LEVELS = {
    LogLevel.ERROR: logging.ERROR,
    LogLevel.WARN: logging.WARNING,
    LogLevel.INFO: logging.INFO,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.TRACE: logging.DEBUG,
}


def load_config_file(
    path: str | None, overrides: Mapping[tuple[str, ...], object] | None = None
) -> DaemonConfig:
    """The config from `path`, or from Kanto's default file when it exists, else defaults;
    `overrides` (the daemon's flags, `(section, ..., key) -> value`) win over the file."""
    explicit = path is not None
    target = Path(path or DEFAULT_CONFIG_FILE)
    raw: object = {}
    where = f"{target}: "
    try:
        text = target.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise InvalidArgument(f"config file {target} does not exist") from None
        text = None
        where = ""
    except OSError as exc:
        raise InvalidArgument(f"cannot read config file {target}: {exc}") from exc
    if text is not None:
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"config file {target} is not valid JSON: {exc}") from exc
    try:
        return parse_daemon_config(with_overrides(raw, overrides or {}))
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}{exc.message}") from exc


def setup_logging(settings: LogSettings) -> None:
    handlers: list[logging.Handler] = []
    if settings.file:
        from ocirt.daemon.logfile import RotatingLogFile

        Path(settings.file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            RotatingLogFile(
                settings.file,
                max_bytes=settings.file_size_mb * 1024 * 1024,
                backups=settings.file_count,
            )
        )
    else:
        handlers.append(logging.StreamHandler())
    if settings.syslog and os.path.exists("/dev/log"):
        # Imported here: its socket handlers pull in pickle, and few devices use syslog.
        from logging.handlers import SysLogHandler

        syslog = SysLogHandler(address="/dev/log")
        syslog.setFormatter(logging.Formatter("ocirt[%(process)d]: %(name)s: %(message)s"))
        handlers.append(syslog)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in handlers:
        if handler.formatter is None:
            handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(_LEVELS[settings.level])


LOCK_NAME = "ocirt.lock"


def lock_dirs(*directories: Path) -> list[int]:
    """One daemon per home and exec root: an exclusive flock on `<dir>/ocirt.lock`, held
    (by the open descriptors returned) until the process ends. A second daemon fails here,
    before it touches the socket, the containers or the MQTT session."""
    import fcntl

    held: list[int] = []
    try:
        for directory in directories:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = directory / LOCK_NAME
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, 32, 0).decode(errors="replace").strip()
                os.close(fd)
                raise FailedPrecondition(
                    f"ocirt is already running (pid {owner or 'unknown'})"
                ) from None
            except OSError as exc:
                os.close(fd)
                raise InvalidArgument(f"cannot lock {path}: {exc.strerror}") from exc
            held.append(fd)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        for fd in held:
            os.close(fd)
        raise
    return held


def reopen_logs(settings: LogSettings) -> None:
    """SIGHUP: reopen the log file (logrotate moved it away) by setting logging up anew."""
    old = list(logging.getLogger().handlers)
    setup_logging(settings)
    for handler in old:
        with contextlib.suppress(Exception):
            handler.close()
    log.info("log file reopened on SIGHUP")


def notify_systemd(state: str) -> None:
    """sd_notify(3) for Type=notify; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with (
        contextlib.suppress(OSError),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
    ):
        sock.sendto(state.encode(), address)


@dataclass
class Daemon:
    """Everything the daemon started, for an orderly stop."""

    config: DaemonConfig
    manager: Manager
    images: ImageService
    bridge: BridgeNetwork | None = None
    api: LocalApi | None = None
    things: ThingsClient | None = None
    metrics: MetricsFeature | None = None
    update_agent: UpdateAgentService | None = None
    health: HealthMonitor | None = None
    deployment: Deployment | None = None

    lanes: Lanes | None = None
    metrics_service: MetricsService | None = None
    pulls: HelperPull | None = None

    def close(self, stop_containers: bool) -> None:
        # Pulls in flight end now (their partials stay for the next pull to resume), so
        # that the creates waiting on them finish within the stop timeout below.
        reason = "cancelled: the daemon is stopping"
        cancelled = self.images.cancel_all(reason)
        if self.pulls is not None:
            cancelled += self.pulls.cancel_all(reason)
        if cancelled:
            log.info("cancelled %d pulls in flight: stopping", cancelled)
        if self.lanes is not None:
            # First: refuse new commands and answer the queued ones (503) while the MQTT
            # client and the local API can still carry the answers.
            wait = self.config.manager.default_ctrs_stop_timeout + 5.0
            left = self.lanes.close(wait)
            if left:
                log.info("answered %d queued commands with 503: stopping", len(left))
        parts: tuple[
            Deployment
            | ThingsClient
            | MetricsFeature
            | UpdateAgentService
            | LocalApi
            | HealthMonitor
            | None,
            ...,
        ] = (self.deployment, self.things, self.metrics, self.update_agent, self.api, self.health)
        for part in parts:
            if part is not None:
                try:
                    part.close()
                except Exception:
                    log.exception("error while stopping %s", type(part).__name__)
        self.manager.close(stop_containers=stop_containers)
        if self.bridge is not None:
            with contextlib.suppress(Exception):
                self.bridge.close()


def _registry_settings(config: DaemonConfig) -> RegistryAccess:
    from ocirt.image.registry.auth import Credentials, RegistryAccess, RegistryConfig, Transport

    containers = config.containers
    return RegistryAccess(
        frozenset(containers.insecure_registries),
        {
            host: RegistryConfig(
                Credentials(r.user_id, r.password) if r.user_id else None,
                Transport(r.transport.root_ca, r.transport.client_cert, r.transport.client_key),
            )
            for host, r in containers.registry_configurations.items()
        },
    )


def build(config: DaemonConfig, cgroup_parent: str = "ocirt") -> Daemon:
    """The manager over the real adapters, recovered."""
    from ocirt.daemon.adapters import BridgeAdapter, HostNetwork, ImageRootfs
    from ocirt.daemon.pull import HelperPull
    from ocirt.image.service import ImageService
    from ocirt.manager.manager import Manager, ManagerSettings
    from ocirt.runtime.hostfacts import read_host_facts
    from ocirt.runtime.monitored import MonitoredRunc
    from ocirt.store.containers import ContainerStore

    home = Path(config.manager.home_dir)
    exec_root = Path(config.manager.exec_root_dir)
    access = _registry_settings(config)
    images = ImageService(
        home,
        access,
        stall_timeout=config.containers.pull_stall_timeout,
        pull_deadline=config.containers.pull_deadline,
    )
    pulls = HelperPull(
        home,
        access,
        stall_timeout=config.containers.pull_stall_timeout,
        pull_deadline=config.containers.pull_deadline,
    )
    rootfs = ImageRootfs(
        images,
        config.containers.image_dec_keys,
        config.containers.image_dec_recipients,
        # Pulls run in a helper process: what they map stays out of the daemon.
        pull=pulls,
    )
    network: NetworkProvider
    bridge: BridgeNetwork | None = None
    if config.network.bridge_disabled:
        log.info("default bridge disabled: containers run in host network mode only")
        network = HostNetwork(bridge_disabled=True)
    else:
        try:
            from ocirt.network.bridge import BridgeNetwork

            bridge = BridgeNetwork(config.network.default_bridge, home / "network")
            bridge.setup()
            network = BridgeAdapter(bridge)
        except OcirtError as exc:
            log.error("bridge network unavailable, only host mode works: %s", exc.message)
            bridge = None
            network = HostNetwork()
    settings = ManagerSettings(
        home_dir=home,
        exec_root=exec_root,
        stop_timeout=config.manager.default_ctrs_stop_timeout,
        cgroup_parent=cgroup_parent,
    )
    runtime = MonitoredRunc(
        settings.runc_root, settings.runtime, notify_socket=settings.notify_socket
    )
    manager = Manager(
        settings,
        rootfs,
        network,
        read_host_facts(with_devices=True),
        runtime=runtime,
        store=ContainerStore(settings.home_dir),
    )
    manager.recover()
    return Daemon(config, manager, images=images, bridge=bridge, pulls=pulls)


# How long a local API call waits for a part of the daemon that is still starting.
STARTUP_WAIT = 120.0

# The GIL's switch interval while the daemon starts (see run_daemon); CPython's is 5 ms.
STARTUP_SWITCH_INTERVAL = 0.0005

# How often unused images are looked for; Kanto's expiry is counted in days.
IMAGE_SWEEP_INTERVAL = 3600.0

# sd_notify once the whole daemon is built and serving (READY=1 comes before: run_daemon).
SERVING = "STATUS=serving"


def expire_images(daemon: Daemon) -> None:
    """Kanto's image expiry: images that no container uses and that were last used longer
    than `image_expiry` ago go, with every blob and snapshot nothing needs any more."""
    containers = daemon.config.containers
    expiry = None if containers.image_expiry_disable else containers.image_expiry
    in_use = {view.image_ref for view in daemon.manager.list()}
    try:
        report = daemon.images.gc(in_use, expiry)
    except (OcirtError, OSError) as exc:
        log.warning("image expiry: %s", exc)
        return
    if report is None:
        log.debug("image expiry: a pull is under way, trying again later")
    elif report.images:
        log.info("image expiry removed %s", ", ".join(report.images))


def sysinfo(daemon: Daemon) -> dict[str, object]:
    from ocirt import __version__ as version

    things = daemon.things
    identity = things.identity if things is not None else None
    return {
        "version": version,
        "homeDir": daemon.config.manager.home_dir,
        "execRoot": daemon.config.manager.exec_root_dir,
        "containers": len(daemon.manager.list()),
        "brokerUrl": daemon.config.connection.broker_url if things is not None else "",
        "thingId": str(identity.thing) if identity is not None else "",
        "bridge": daemon.config.network.default_bridge.name if daemon.bridge else "",
    }


class _Later:
    """Stands for a part of the daemon built after the local API opened: its methods,
    called, wait for it (`_started`)."""

    def __init__(self, find: Callable[[], Any]) -> None:
        self._find = find

    def __getattr__(self, name: str) -> Any:
        return getattr(self._find(), name)


def open_api(
    config: DaemonConfig, manager: Any, daemon: Callable[[], Daemon | None], lanes: Lanes
) -> LocalApi:
    """The local API over `manager` (the manager, or the stand-in of `ocirt.daemon.early`
    while the daemon starts). The operations of the parts built later (images, health,
    update agent, metrics) find them through `daemon()`, waiting while they are still
    being built (Unavailable after STARTUP_WAIT). Changes run on `lanes`, shared with the
    MQTT front end."""
    from ocirt.daemon.localapi import SOCKET_NAME, ApiHandlers, ApiLimits, ImageHandlers, LocalApi

    def running() -> Daemon:
        return _started(daemon, lambda d: d, "daemon")

    limits = config.limits
    api = LocalApi(
        Path(config.manager.exec_root_dir) / SOCKET_NAME,
        ApiHandlers(
            manager,
            lambda: sysinfo(running()),
            {
                "apply": lambda args: _started(
                    daemon, lambda d: d.update_agent, "update agent"
                ).apply(args)
            },
            # No health yet is no health shown: list must answer while the daemon starts.
            health=lambda cid: (
                monitor.health_json(cid)
                if (started := daemon()) is not None and (monitor := started.health) is not None
                else None
            ),
            stats=lambda ids, interval: _started(
                daemon, lambda d: d.metrics_service, "metrics"
            ).stats(ids, interval),
            images=ImageHandlers(
                _Later(lambda: _started(daemon, lambda d: d.images, "image store")),
                manager.list,
                (config.containers.image_dec_keys, config.containers.image_dec_recipients),
            ),
            lanes=lanes,
        ),
        ApiLimits(limits.api_max_connections, limits.api_idle_timeout),
    )
    api.start()
    return api


def _lanes(config: DaemonConfig) -> Lanes:
    """One set of lanes for both front ends: pulls are bounded together."""
    from ocirt.lanes import Lanes

    limits = config.limits
    return Lanes(limits.create_workers, limits.control_workers, limits.command_queue_size)


def serve(daemon: Daemon) -> None:
    """Deployment, local API (unless open already) and things client: the parts that
    face users. The local API comes before the health checks, the update agent, metrics
    and MQTT are imported and built: its answers need only the recovered manager."""
    config = daemon.config
    if daemon.lanes is None:
        daemon.lanes = _lanes(config)
    if daemon.api is None:
        daemon.api = open_api(config, daemon.manager, lambda: daemon, daemon.lanes)
    # health checks and update agent hook (issue 16): health checks of images that have
    # one; `ocirt apply` always, MQTT when update_agent.enable.
    from ocirt.health.monitor import HealthMonitor
    from ocirt.health.probe import RuncProbeRunner
    from ocirt.metrics.feature import MetricsFeature
    from ocirt.metrics.service import MetricsService
    from ocirt.updateagent.service import UpdateAgentService

    images = daemon.images
    daemon.health = HealthMonitor(
        daemon.manager,
        lambda ref: images.get(ref).config.execution.healthcheck,
        # The manager's runc state root (ManagerSettings.runc_root): runc exec finds the
        # container there.
        RuncProbeRunner(Path(config.manager.exec_root_dir) / "runc"),
        config.manager.default_ctrs_stop_timeout,
    )
    daemon.health.start()
    if config.deployment.enable:
        from ocirt.daemon.deployment import Deployment

        # In the background, as Kanto deploys; after the health monitor, for the gate.
        daemon.deployment = Deployment(
            daemon.manager,
            config.deployment,
            Path(config.deployment.home_dir),
            activation_gate(daemon),
            config.manager.default_ctrs_stop_timeout,
        )
        daemon.deployment.start()

    daemon.update_agent = UpdateAgentService(
        config.update_agent,
        daemon.manager,
        config.manager.default_ctrs_stop_timeout,
        _mqtt_settings(config),
        health=daemon.health,
        state_dir=Path(config.manager.home_dir) / "updateagent",
    )
    daemon.update_agent.start()
    daemon.metrics_service = metrics = MetricsService(daemon.manager)
    if config.things.enable:
        from ocirt.things.features import FeatureHandler, Features, FeatureSettings
        from ocirt.things.mqtt import ThingsClient

        factory = "ContainerFactory" in config.things.features
        extensions = (
            software_updatable(daemon) if "SoftwareUpdatable" in config.things.features else ()
        )
        extra: dict[str, FeatureHandler] = {}
        if extensions:
            extra["SoftwareUpdatable"] = extensions[0].handle
        if "Metrics" in config.things.features:
            from ocirt.metrics.feature import METRICS, MetricsFeature

            try:
                daemon.metrics = MetricsFeature(metrics.collector(), Path(config.things.home_dir))
                daemon.metrics.start()
                extra[METRICS] = daemon.metrics.handle
            except OcirtError as exc:
                log.error("the Metrics feature is off: %s", exc.message)
        features = Features(
            daemon.manager,
            FeatureSettings(factory_enabled=factory),
            extra,
        )
        daemon.things = ThingsClient(
            _mqtt_settings(config),
            daemon.manager,
            features,
            Path(config.things.home_dir),
            factory_enabled=factory,
            extensions=extensions,
            live=[daemon.metrics] if daemon.metrics else (),
            lanes=daemon.lanes,
        )
        daemon.things.start()


def activation_gate(daemon: Daemon) -> ActivationGate:
    """The gate a replaced or installed container passes (`ocirt.health.gate`), with the
    update agent's settings."""
    from ocirt.health.gate import ActivationGate

    settings = daemon.config.update_agent
    return ActivationGate(
        daemon.manager,
        daemon.health,
        monitor=settings.activation_monitor,
        timeout=settings.activation_timeout,
    )


def _started(
    daemon: Callable[[], Daemon | None],
    part: Callable[[Daemon], _Part | None],
    what: str,
    wait: float = STARTUP_WAIT,
) -> _Part:
    """A part of the daemon, waiting while the daemon starts (as `StartingManager` does
    for the manager); Unavailable if it is not there within `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        built = daemon()
        found = part(built) if built is not None else None
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise Unavailable(f"the {what} is still starting")
        time.sleep(0.01)


def software_updatable(daemon: Daemon) -> tuple[SoftwareUpdatable, ...]:
    """The SoftwareUpdatable feature; its journal lives in the things home dir."""
    from ocirt.swupdate.feature import SoftwareUpdatable
    from ocirt.swupdate.fetch import HttpArtifactSource

    config = daemon.config
    feature = SoftwareUpdatable(
        daemon.manager,
        HttpArtifactSource(_registry_settings(config)),
        Path(config.things.home_dir) / "softwareupdatable",
        stop_timeout=config.manager.default_ctrs_stop_timeout,
        gate=activation_gate(daemon),
    )
    return (feature,)


def defer_unused_modules() -> None:
    """Stand-ins (ocirt.deferred) for what an idle device needs neither of: TLS and
    hashing (which paho imports at once), the registry's HTTP client (with the email
    package under it) and tar archives. Called before anything imports them."""
    deferred.defer(*deferred.PAHO_RARELY_USED, "http.client", "tarfile")


def _mqtt_settings(config: DaemonConfig) -> MqttSettings:
    """The `connection` section for an MQTT client (things and update agent)."""
    from ocirt.things.mqtt import MqttSettings

    connection = config.connection
    return MqttSettings(
        broker_url=connection.broker_url,
        keep_alive=connection.keep_alive,
        username=connection.client_username,
        password=connection.client_password,
        connect_timeout=connection.connect_timeout,
        root_ca=connection.transport.root_ca,
        client_cert=connection.transport.client_cert,
        client_key=connection.transport.client_key,
        max_message_size=config.limits.mqtt_max_message_size,
    )


def run_daemon(
    config_path: str | None,
    stop_containers_on_exit: bool,
    cgroup_parent: str = "ocirt",
    overrides: Mapping[tuple[str, ...], object] | None = None,
) -> int:
    defer_unused_modules()
    config = load_config_file(config_path, overrides)
    setup_logging(config.log)
    for warning in config.warnings:
        log.warning("config: %s", warning)
    locks = lock_dirs(Path(config.manager.exec_root_dir), Path(config.manager.home_dir))
    received: set[int] = set()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # The main loop acts on it: a handler that logs could meet a held logging lock.
        received.add(signum)

    # A signal the kernel hands to another thread (any of ours may get it) runs this
    # handler only when the main thread next runs Python, and would not wake it from a
    # wait: the wakeup pipe does (CPython writes each signal's number into it).
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    previous_wakeup = signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    # The local API answers list and get from the records at once (`ocirt.daemon.early`);
    # the image store, the bridge, recovery and MQTT come after, so a restart with any
    # number of containers answers about as soon as the interpreter has started.
    from ocirt.daemon.early import StartingManager

    starting = StartingManager.load(Path(config.manager.home_dir))
    built: list[Daemon] = []
    # While the main thread imports and builds, the API thread gets the GIL at every
    # switch interval: a short one lets early answers through in well under 5 ms.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(STARTUP_SWITCH_INTERVAL)
    lanes = _lanes(config)
    api = open_api(config, starting, lambda: built[0] if built else None, lanes)
    # Ready (#17: load what the first answer needs, the rest after ready): the local API
    # answers now, from the records, and holds other requests until the manager is
    # built. A failure while building still ends the daemon, which systemd then sees
    # exit. STATUS=serving says when everything (bridge, recovery, MQTT...) is up.
    notify_systemd("READY=1")
    try:
        daemon = build(config, cgroup_parent)
    except BaseException:
        api.close()
        lanes.close(0.0)
        for fd in locks:
            os.close(fd)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(wake_r)
        os.close(wake_w)
        raise
    daemon.api = api
    daemon.lanes = lanes
    built.append(daemon)
    starting.attach(daemon.manager)
    try:
        serve(daemon)
        sys.setswitchinterval(switch_interval)
        log.info(
            "ocirt daemon ready (pid %d): socket %s, bridge %s, home %s",
            os.getpid(),
            daemon.api.path if daemon.api is not None else "none",
            config.network.default_bridge.name if daemon.bridge else "none (host network only)",
            config.manager.home_dir,
        )
        notify_systemd(SERVING)
        next_sweep = time.monotonic() + IMAGE_SWEEP_INTERVAL
        while not received & {signal.SIGTERM, signal.SIGINT}:
            select.select([wake_r], [], [], max(0.0, next_sweep - time.monotonic()))
            with contextlib.suppress(BlockingIOError):
                received.update(os.read(wake_r, 512))
            if signal.SIGHUP in received:
                received.discard(signal.SIGHUP)
                reopen_logs(config.log)
            if time.monotonic() >= next_sweep:
                expire_images(daemon)
                next_sweep = time.monotonic() + IMAGE_SWEEP_INTERVAL
        log.info("stopping%s", " and stopping containers" if stop_containers_on_exit else "")
        notify_systemd("STOPPING=1")
    finally:
        daemon.close(stop_containers_on_exit)
        for fd in locks:
            os.close(fd)
        signal.set_wakeup_fd(previous_wakeup)
        os.close(wake_r)
        os.close(wake_w)
    return 0
