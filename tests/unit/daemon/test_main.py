"""The composition root without root: registry settings, the image expiry sweep, the
config file, logging, sd_notify, serving and an orderly stop (over FakeManager; `build`,
which sets up runc and the bridge, is left to the integration tests)."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ocirt.cli.client import request
from ocirt.daemon import main
from ocirt.daemon.config import DaemonConfig, LogLevel, LogSettings, parse_daemon_config
from ocirt.daemon.logfile import RotatingLogFile
from ocirt.daemon.main import (
    Daemon,
    _registry_settings,
    expire_images,
    load_config_file,
    notify_systemd,
    serve,
    setup_logging,
)
from ocirt.errors import ImageError, InvalidArgument, NotFound
from ocirt.image.content.store import GcReport
from ocirt.image.registry.auth import Credentials, Transport
from tests.support.fake_manager import FakeManager


def test_registry_settings_carry_the_config() -> None:
    config = parse_daemon_config(
        {
            "containers": {
                "insecure_registries": ["localhost:5000"],
                "registry_configurations": {
                    "reg.example:443": {
                        "credentials": {"user_id": "u", "password": "p"},
                        "transport": {"root_ca": "/ca.pem", "client_cert": "/c.pem"},
                    },
                    "anon.example": {"transport": {"client_key": "/k.pem"}},
                },
            }
        }
    )
    settings = _registry_settings(config)
    assert settings.is_insecure("localhost:5000")
    assert not settings.is_insecure("localhost")
    with_creds = settings.config_for("reg.example:443")
    assert with_creds.credentials == Credentials("u", "p")
    assert with_creds.transport == Transport("/ca.pem", "/c.pem", "")
    anonymous = settings.config_for("anon.example")
    assert anonymous.credentials is None
    assert anonymous.transport == Transport("", "", "/k.pem")
    assert settings.config_for("other.example").credentials is None


@dataclass
class _View:
    image_ref: str


@dataclass
class _Manager:
    views: list[_View]

    def list(self) -> list[_View]:
        return self.views


@dataclass
class _Images:
    answer: Any = None
    calls: list[tuple[set[str], float | None]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def get(self, ref: str) -> Any:
        raise NotFound(f"image {ref} is not on this device")

    def cancel_all(self, reason: str = "cancelled") -> int:
        self.cancelled.append(reason)
        return 0

    def gc(self, in_use: set[str], expiry: float | None) -> Any:
        self.calls.append((in_use, expiry))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


DISABLED = {"image_expiry": "2h", "image_expiry_disable": True}


@pytest.mark.parametrize(
    ("containers", "expiry"), [({"image_expiry": "2h"}, 7200.0), (DISABLED, None)]
)
def test_expiry_sweep_spares_images_in_use(
    containers: dict[str, Any], expiry: float | None
) -> None:
    images = _Images(GcReport(("old:1",), 2, 1))
    manager = _Manager([_View("busybox:latest"), _View("app:1"), _View("app:1")])
    daemon = Daemon(parse_daemon_config({"containers": containers}), manager, images=images)
    expire_images(daemon)
    assert images.calls == [({"busybox:latest", "app:1"}, expiry)]


@pytest.mark.parametrize("answer", [None, ImageError("store damaged"), OSError(5, "EIO")])
def test_expiry_sweep_that_cannot_run_leaves_the_daemon_up(answer: Any) -> None:
    images = _Images(answer)
    daemon = Daemon(parse_daemon_config({}), _Manager([]), images=images)
    expire_images(daemon)  # a pull under way (None) or a failing store: logged, not raised
    assert images.calls == [(set(), 744 * 3600.0)]


# ---- the config file --------------------------------------------------------------------


def test_config_file_is_read_and_parsed(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"manager": {"home_dir": "/h"}, "things": {"enable": False}}))
    config = load_config_file(str(path))
    assert (config.manager.home_dir, config.things.enable) == ("/h", False)


def test_no_default_config_file_means_kantos_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(main, "DEFAULT_CONFIG_FILE", str(tmp_path / "absent.json"))
    assert load_config_file(None) == parse_daemon_config({})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "config file {path} does not exist"),
        (b"{oops", "config file {path} is not valid JSON: "),
        (b'{"log": {"log_level": "LOUD"}}', "{path}: log.log_level must be one of"),
        ("dir", "cannot read config file {path}: "),
    ],
)
def test_config_file_errors_name_the_file(
    tmp_path: Path, content: bytes | str | None, message: str
) -> None:
    path = tmp_path / "config.json"
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(InvalidArgument) as caught:
        load_config_file(str(path))
    assert caught.value.message.startswith(message.format(path=path))


# ---- logging and systemd ----------------------------------------------------------------


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            if handler not in handlers:
                handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def test_logging_to_a_rotating_file(tmp_path: Path, root_logger: logging.Logger) -> None:
    target = tmp_path / "logs" / "ocirt.log"
    setup_logging(LogSettings(file=str(target), level=LogLevel.WARN, file_size_mb=1))
    (handler,) = root_logger.handlers
    assert isinstance(handler, RotatingLogFile)
    assert handler.max_bytes == 1024 * 1024
    assert root_logger.level == logging.WARNING
    logging.getLogger("ocirt.test").warning("disk %s", "full")
    handler.flush()
    assert target.read_text().rstrip().endswith("WARNING ocirt.test: disk full")


def test_logging_to_stderr_by_default(root_logger: logging.Logger) -> None:
    setup_logging(LogSettings(level=LogLevel.TRACE))
    (handler,) = root_logger.handlers
    assert type(handler) is logging.StreamHandler
    assert root_logger.level == logging.DEBUG


@pytest.mark.parametrize("abstract", [False, True])
def test_systemd_is_notified_on_its_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abstract: bool
) -> None:
    name = f"ocirt-test-{os.getpid()}-{tmp_path.name}"
    address = "\0" + name if abstract else str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(address)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name if abstract else address)
        notify_systemd("READY=1")
        assert listener.recv(64) == b"READY=1"


def test_systemd_notification_without_systemd_is_a_no_op(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notify_systemd("READY=1")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    notify_systemd("READY=1")  # a gone systemd must not stop the daemon


# ---- serving and stopping -----------------------------------------------------------------


class ClosingManager(FakeManager):
    def __init__(self) -> None:
        super().__init__()
        self.closed: list[bool] = []

    def close(self, stop_containers: bool = False) -> None:
        self.closed.append(stop_containers)


@dataclass
class _Part:
    name: str
    order: list[str]
    fail: bool = False

    def close(self) -> None:
        self.order.append(self.name)
        if self.fail:
            raise RuntimeError("stuck")


def test_close_stops_front_ends_then_the_manager_then_the_bridge(
    caplog: pytest.LogCaptureFixture,
) -> None:
    order: list[str] = []
    manager = ClosingManager()
    images = _Images()
    daemon = Daemon(parse_daemon_config({}), manager, images=images)  # type: ignore[arg-type]
    daemon.things = _Part("things", order, fail=True)  # type: ignore[assignment]
    daemon.api = _Part("api", order)  # type: ignore[assignment]
    daemon.bridge = _Part("bridge", order, fail=True)  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="ocirt.daemon"):
        daemon.close(stop_containers=True)
    assert order == ["things", "api", "bridge"]
    assert manager.closed == [True]
    assert "error while stopping _Part" in caplog.text
    # Pulls in flight are cancelled first, so that waiting creates end in time.
    assert images.cancelled == ["cancelled: the daemon is stopping"]


def _config(tmp_path: Path, **sections: Any) -> DaemonConfig:
    raw: dict[str, Any] = {
        "manager": {"home_dir": str(tmp_path / "home"), "exec_root_dir": str(tmp_path / "run")},
        "things": {"enable": False, "home_dir": str(tmp_path / "things")},
        "deployment": {"enable": False, "ctr_dir": str(tmp_path / "ctrs")},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return parse_daemon_config(raw)


def test_serve_opens_the_local_api_with_sysinfo(tmp_path: Path) -> None:
    manager = ClosingManager()
    daemon = Daemon(_config(tmp_path), manager, images=_Images())  # type: ignore[arg-type]
    serve(daemon)
    try:
        assert daemon.things is None
        info = request(tmp_path / "run" / "ocirt.sock", "sysinfo", {})
    finally:
        daemon.close(stop_containers=False)
    assert info["homeDir"] == str(tmp_path / "home")
    assert info["execRoot"] == str(tmp_path / "run")
    assert (info["containers"], info["brokerUrl"], info["thingId"], info["bridge"]) == (
        0,
        "",
        "",
        "",
    )
    assert not (tmp_path / "run" / "ocirt.sock").exists()


def test_serve_deploys_descriptors_and_starts_the_things_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocirt.things import mqtt

    clients: list[Any] = []

    class Paho:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.calls: list[str] = []
            clients.append(self)

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: self.calls.append(name)

    monkeypatch.setattr(mqtt, "_BoundedClient", Paho)
    ctrs = tmp_path / "ctrs"
    ctrs.mkdir()
    (ctrs / "web.json").write_text(json.dumps({"container_name": "web", "image": {"name": "img"}}))
    config = _config(
        tmp_path,
        deployment={"enable": True},
        things={"enable": True},
        connection={"broker_url": "tcp://broker.test:1999", "client_username": "u"},
    )
    manager = ClosingManager()
    daemon = Daemon(config, manager, images=_Images())  # type: ignore[arg-type]
    serve(daemon)
    try:
        assert [view.name for view in manager.list()] == ["web"]
        assert isinstance(daemon.things, mqtt.ThingsClient)
        assert "connect_async" in clients[0].calls
        assert "username_pw_set" in clients[0].calls
        info = request(tmp_path / "run" / "ocirt.sock", "sysinfo", {})
        assert info["brokerUrl"] == "tcp://broker.test:1999"
        assert info["thingId"] == ""  # no bootstrap answer yet
    finally:
        daemon.close(stop_containers=False)
    assert "disconnect" in clients[0].calls


def test_run_daemon_serves_sweeps_images_and_stops_on_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logger: logging.Logger
) -> None:
    path = tmp_path / "config.json"
    config = _config(tmp_path)
    path.write_text(
        json.dumps(
            {
                "manager": {"home_dir": config.manager.home_dir,
                            "exec_root_dir": config.manager.exec_root_dir},
                "things": {"enable": False},
                "deployment": {"enable": False},
                "grpc_server": {"protocol": "unix"},
            }
        )
    )  # fmt: skip
    manager = ClosingManager()

    class Images(_Images):
        def gc(self, in_use: set[str], expiry: float | None) -> Any:
            # The daemon is up and sweeping: what systemd's stop would do now.
            assert (tmp_path / "run" / "ocirt.sock").exists()
            signal.raise_signal(signal.SIGTERM)
            return super().gc(in_use, expiry)

    images = Images(GcReport((), 0, 0))
    built: list[tuple[DaemonConfig, str]] = []

    def build(config: DaemonConfig, cgroup_parent: str) -> Daemon:
        built.append((config, cgroup_parent))
        return Daemon(config, manager, images=images)  # type: ignore[arg-type]

    monkeypatch.setattr(main, "build", build)
    monkeypatch.setattr(main, "defer_unused_modules", lambda: None)
    monkeypatch.setattr(main, "IMAGE_SWEEP_INTERVAL", 0.01)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert main.run_daemon(str(path), True, "test-parent") == 0
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert built[0][1] == "test-parent"
    assert built[0][0].warnings == (
        "grpc_server is not used: ocirt has no gRPC API (its CLI talks to the local API "
        "socket ocirt.sock in manager.exec_root_dir)",
    )
    assert len(images.calls) == 1
    assert manager.closed == [True]
    assert not (tmp_path / "run" / "ocirt.sock").exists()


def test_a_second_lock_on_the_same_dirs_names_the_holder(tmp_path: Path) -> None:
    import subprocess
    import sys

    held = main.lock_dirs(tmp_path / "exec", tmp_path / "home")
    try:
        # flock is per open file: another process is refused, and told who holds it.
        probe = (
            "import sys; from pathlib import Path; from ocirt.daemon import main\n"
            "try:\n main.lock_dirs(Path(sys.argv[1]))\n"
            "except Exception as e: print(e.message)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, str(tmp_path / "home")],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert done.stdout.strip() == f"ocirt is already running (pid {os.getpid()})"
    finally:
        for fd in held:
            os.close(fd)
    again = main.lock_dirs(tmp_path / "exec", tmp_path / "home")
    for fd in again:
        os.close(fd)


def test_run_daemon_stops_on_a_sigterm_that_another_thread_receives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_logger: logging.Logger
) -> None:
    # The kernel hands a process's signal to any thread; one that lands on a worker
    # thread must still wake the main loop, which otherwise sleeps until the next sweep.
    path = tmp_path / "config.json"
    config = _config(tmp_path)
    path.write_text(
        json.dumps(
            {
                "manager": {"home_dir": config.manager.home_dir,
                            "exec_root_dir": config.manager.exec_root_dir},
                "things": {"enable": False},
                "deployment": {"enable": False},
            }
        )
    )  # fmt: skip
    manager = ClosingManager()
    monkeypatch.setattr(main, "build", lambda c, p: Daemon(c, manager, images=_Images()))
    monkeypatch.setattr(main, "defer_unused_modules", lambda: None)
    monkeypatch.setattr(main, "IMAGE_SWEEP_INTERVAL", 3600.0)
    ready = threading.Event()
    monkeypatch.setattr(main, "notify_systemd", lambda s: ready.set() if s == "READY=1" else None)
    main_thread = threading.get_ident()
    outcome: list[str] = []

    def sender() -> None:
        assert ready.wait(30)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # to this thread only
        if not stopped.wait(10):
            outcome.append("not woken")
            signal.pthread_kill(main_thread, signal.SIGINT)  # unblock the test

    stopped = threading.Event()
    thread = threading.Thread(target=sender)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    thread.start()
    try:
        assert main.run_daemon(str(path), False, "test-parent") == 0
        stopped.set()
    finally:
        stopped.set()
        thread.join(30)
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert outcome == []
    assert manager.closed == [False]
