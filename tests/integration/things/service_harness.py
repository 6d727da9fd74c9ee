"""Real parts for the service suites: mosquitto, a cloud-side MQTT client, an image in
the store, and the `ocirt daemon` itself as a subprocess.

Everything is private to one test: a broker on a free 127.0.0.1 port, a home dir, an
exec root under /run, a bridge with a unique name on a free 10.231.x.0/24. Teardown
removes containers (through a Manager on the same store), the bridge, its rules and
namespaces, and stops every process it started, by PID, even when the test failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.waiting import free_port

REPO = Path(__file__).resolve().parents[3]
WAIT = 60.0
IMAGE = "localhost/busybox:itest"


class Broker:
    """mosquitto on 127.0.0.1:<port>; restartable on the same port."""

    def __init__(self, directory: Path, *, nodelay: bool = False) -> None:
        """`nodelay`: the broker sets TCP_NODELAY (`set_tcp_nodelay`), for benches. With
        mosquitto's default, a response that follows its PUBACK to the same client
        within ~40 ms waits for that client's delayed ACK (Nagle), so a timed round
        trip never shows less than ~41 ms, whatever the device did."""
        self.port = free_port()
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            + ("set_tcp_nodelay true\n" if nodelay else "")
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited at start")
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@dataclass
class Received:
    topic: str
    body: Any


@dataclass
class Cloud:
    """The cloud side: answers the bootstrap, sends commands, records what comes back."""

    port: int
    device_id: str
    tenant: str = "t1"
    messages: list[Received] = field(default_factory=list)
    bootstraps: int = 0

    def __post_init__(self) -> None:
        self.thing = f"{self.device_id}:edge:containers"
        ns, _, name = self.thing.partition(":")
        self.prefix = f"{ns}/{name}"
        self._cond = threading.Condition()
        # Created before connecting: on_connect may run at once on paho's thread.
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"cloud-{uuid.uuid4()}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", self.port, 20)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT), "cloud client did not connect"

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe(
            [("edge/thing/request", 1), (f"e/{self.tenant}/#", 1), ("command//+/res/#", 1)]
        )

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == "edge/thing/request":
            identity = {"deviceId": self.device_id, "tenantId": self.tenant, "policyId": "p"}
            client.publish("edge/thing/response", json.dumps(identity), qos=1)
            with self._cond:
                self.bootstraps += 1
                self._cond.notify_all()
            return
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = msg.payload
        with self._cond:
            self.messages.append(Received(msg.topic, body))
            self._cond.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        with self._cond:
            result = self._cond.wait_for(predicate, timeout)
        assert result, f"timed out waiting for {what}"
        return result

    # ---- commands -----------------------------------------------------------------------

    def send(
        self,
        op: str,
        feature: str,
        value: Any = ...,
        *,
        req_id: str | None = None,
        subject: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """Publish one command (the seed documents' shape); returns its request id."""
        req_id = uuid.uuid4().hex[:8] if req_id is None else req_id
        if raw is None:
            envelope: dict[str, Any] = {
                "topic": f"{self.prefix}/things/live/messages/{op}",
                "headers": headers
                if headers is not None
                else {
                    "response-required": True,
                    "content-type": "application/json",
                    "correlation-id": f"corr-{req_id}",
                },
                "path": f"/features/{feature}/inbox/messages/{op}",
            }
            if value is not ...:
                envelope["value"] = value
            raw = json.dumps(envelope).encode()
        topic = f"command//{self.thing}/req/{req_id}/{subject or op}"
        self.client.publish(topic, raw, qos=1).wait_for_publish(WAIT)
        return req_id

    def response(self, req_id: str, timeout: float = WAIT) -> Received:
        prefix = f"command//{self.thing}/res/{req_id}/"

        def found() -> Received | None:
            return next((m for m in self.messages if m.topic.startswith(prefix)), None)

        return self.wait_for(found, f"response to {req_id}", timeout)  # type: ignore[no-any-return]

    def call(self, op: str, feature: str, value: Any = ..., **kw: Any) -> Received:
        return self.response(self.send(op, feature, value, **kw))

    # ---- twin -----------------------------------------------------------------------------

    def twin(self, feature_prefix: str = "/features/") -> list[tuple[str, str, Any]]:
        """(action, path, value) of the twin commands so far, in arrival order."""
        with self._cond:
            out = []
            for m in self.messages:
                if m.topic != f"e/{self.tenant}/{self.thing}" or not isinstance(m.body, dict):
                    continue
                if not m.body["path"].startswith(feature_prefix):
                    continue
                action = m.body["topic"].rsplit("/", 1)[1]
                out.append((action, m.body["path"], m.body.get("value")))
            return out

    def wait_twin(self, feature_prefix: str, predicate: Callable[[list[Any]], bool]) -> None:
        self.wait_for(lambda: predicate(self.twin(feature_prefix)), f"twin of {feature_prefix}")


def state_updates(twin: list[tuple[str, str, Any]], cid: str) -> list[str]:
    path = f"/features/Container:{cid}/properties/status/state"
    return [v["status"] for a, p, v in twin if p == path and a == "modify"]


# ---- the image -----------------------------------------------------------------------------


def build_layout(rootfs: Path, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, str(REPO / "hack" / "mkimage.py"), str(dest), "itest", str(rootfs)],
        check=True,
        capture_output=True,
    )
    return dest


def load_image(layout: Path, home: Path) -> None:
    from ocirt.image.service import ImageService

    ImageService(home).load(layout, name="localhost/busybox")


# ---- the daemon ------------------------------------------------------------------------------


@dataclass
class Service:
    """One daemon's world: config, dirs, bridge, and the daemon process when running."""

    tmp: Path
    broker_port: int
    layout: Path
    home: Path = field(init=False)
    exec_root: Path = field(init=False)
    bridge: str = field(init=False)
    subnet: str = field(init=False)
    config_path: Path = field(init=False)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)
    extra_config: dict[str, Any] = field(default_factory=dict)
    # The containers' cgroup parent: unique per test, removed by the cgroup_parent fixture.
    cgroup_parent: str = "ocirt"

    def __post_init__(self) -> None:
        import random
        from ipaddress import IPv4Network

        from ocirt.network.netlink import Netlink

        # Short paths: the monitors' unix sockets live under the home dir (108-byte limit).
        self.base = Path("/run") / f"ocirt-test-{uuid.uuid4().hex[:10]}"
        self.home = self.base / "home"
        self.exec_root = self.base / "exec"
        self.bridge = f"ocd{uuid.uuid4().hex[:6]}"
        nl = Netlink()
        try:
            routed = [r.dst for r in nl.host_routes() if r.dst.prefixlen > 0]
        finally:
            nl.close()
        choices = list(IPv4Network("10.231.0.0/16").subnets(new_prefix=24))
        random.shuffle(choices)
        subnet = next(n for n in choices if not any(n.overlaps(r) for r in routed))
        self.subnet = str(subnet)
        self.gateway = str(subnet.network_address + 1)
        self.config_path = self.tmp / "config.json"
        self.log_path = self.tmp / "daemon.log"
        self.home.mkdir(parents=True, exist_ok=True)
        load_image(self.layout, self.home)

    @property
    def socket(self) -> Path:
        return self.exec_root / "ocirt.sock"

    def write_config(self) -> None:
        config: dict[str, Any] = {
            "log": {"log_level": "DEBUG"},
            "manager": {
                "home_dir": str(self.home),
                "exec_root_dir": str(self.exec_root),
                "default_ctrs_stop_timeout": "5s",
            },
            "network": {"default_bridge": {"name": self.bridge, "ip4": f"{self.gateway}/24"}},
            "things": {"home_dir": str(self.home / "things"), "features": ["ContainerFactory"]},
            "deployment": {"enable": True, "ctr_dir": str(self.tmp / "deploy")},
            "connection": {"broker_url": f"tcp://127.0.0.1:{self.broker_port}"},
        }
        for section, values in self.extra_config.items():
            config.setdefault(section, {}).update(values)
        self.config_path.write_text(json.dumps(config))

    def start(self, *extra: str) -> None:
        """Start the daemon and return once it serves: its sd_notify READY=1 (the local
        API answers, from the records), then STATUS=serving (built, recovered, MQTT
        started)."""
        self.write_config()
        log = self.log_path.open("ab")
        notify_path = self.tmp / "notify.sock"
        notify_path.unlink(missing_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            notify.bind(str(notify_path))
            notify.settimeout(0.05)
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ocirt.cli.main", "daemon", "--config",
                 str(self.config_path), "--cgroup-parent", self.cgroup_parent, *extra],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NOTIFY_SOCKET": str(notify_path)},
            )  # fmt: skip
            log.close()
            deadline = time.monotonic() + WAIT
            seen: set[bytes] = set()
            while True:
                with contextlib.suppress(TimeoutError):
                    seen.update(notify.recv(4096).split(b"\n"))
                if b"STATUS=serving" in seen:
                    assert b"READY=1" in seen, "serving without READY=1 first"
                    return
                if self.proc.poll() is not None:
                    raise AssertionError(f"daemon exited: {self.log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError("daemon did not report ready")
        finally:
            notify.close()
            notify_path.unlink(missing_ok=True)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        code = self.proc.returncode
        self.proc = None
        return code

    def cli(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ocirt.cli.main", argv[0], "--socket", str(self.socket),
             *argv[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip

    def cleanup(self) -> None:
        """Remove every container, mount, netns, rule and the bridge, whatever happened."""
        self.stop(signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._remove_containers()
        runc_root = self.exec_root / "runc"
        if runc_root.exists():
            listed = subprocess.run(
                ["runc", "--root", str(runc_root), "list", "-f", "json"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            for state in json.loads(listed.stdout or "null") or []:
                subprocess.run(
                    ["runc", "--root", str(runc_root), "delete", "-f", state["id"]],
                    capture_output=True, check=False,
                )  # fmt: skip
        with contextlib.suppress(Exception):
            from ocirt.image.service import ImageService

            images = ImageService(self.home)
            for cid in images.snapshots.containers():
                images.release_rootfs(cid)
        self._remove_network()
        shutil.rmtree(self.base, ignore_errors=True)

    def _remove_containers(self) -> None:
        from ocirt.daemon.main import build, load_config_file

        daemon = build(load_config_file(str(self.config_path)), self.cgroup_parent)
        try:
            for view in daemon.manager.list():
                with contextlib.suppress(Exception):
                    daemon.manager.remove(view.id, True)
        finally:
            daemon.close(stop_containers=False)

    def _remove_network(self) -> None:
        from ocirt.network.bridge import make_firewall
        from ocirt.network.firewall import Backend
        from ocirt.network.netlink import Netlink, list_netns, remove_netns
        from ocirt.network.plan import netns_prefix, veth_prefix

        for backend in (Backend.IPTABLES, Backend.NFTABLES):
            with contextlib.suppress(Exception):
                make_firewall(backend).uninstall(self.bridge)
        nl = Netlink()
        try:
            for link in nl.link_names(veth_prefix(self.bridge)):
                with contextlib.suppress(Exception):
                    nl.delete_link(link)
            with contextlib.suppress(Exception):
                nl.delete_link(self.bridge)
        finally:
            nl.close()
        for ns in list_netns(netns_prefix(self.bridge)):
            with contextlib.suppress(Exception):
                remove_netns(ns)


@contextlib.contextmanager
def running_broker(directory: Path) -> Iterator[Broker]:
    broker = Broker(directory)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def in_container(service: Service, cid: str, *argv: str) -> str:
    """Run a command inside a running container (runc exec) and return its stdout."""
    done = subprocess.run(
        ["runc", "--root", str(service.exec_root / "runc"), "exec", cid, *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def deployed(service: Service, runs: int) -> str:
    """The daemon's log once its deployment has finished `runs` times (deployment runs in
    the background, as Kanto's does)."""
    deadline = time.monotonic() + WAIT
    while True:
        text = service.log_path.read_text(errors="replace")
        if text.count("deployment finished") >= runs:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"deployment did not finish: {text[-3000:]}")
        time.sleep(0.1)


def never_healthy_layout(busybox_rootfs: Path, base: Path) -> Path:
    """An OCI layout of `never`: busybox serving forever, whose HEALTHCHECK always fails
    (every 300 ms, unhealthy after two failures). Load it with a name, e.g. localhost/hc."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mkimage", REPO / "hack" / "mkimage.py")
    assert spec is not None and spec.loader is not None
    mk = importlib.util.module_from_spec(spec)
    sys.modules["mkimage"] = mk  # its dataclasses look their module up
    spec.loader.exec_module(mk)
    ms = 1_000_000
    config = {
        "Cmd": ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"],
        "Env": ["PATH=/bin:/usr/bin"],
        "Healthcheck": {"Test": ["CMD", "false"], "Interval": 300 * ms, "Timeout": 5000 * ms,
                        "Retries": 2},
    }  # fmt: skip
    desc = mk.write_image(base, mk.split_rootfs(busybox_rootfs, 1), config=config)
    mk.write_index(base, "never", [desc], nested=False)
    return base


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


# ---- fixtures (imported by the conftest of each service suite) -----------------------------


@pytest.fixture(scope="session")
def busybox_layout(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout of the busybox rootfs (loaded offline into each test's store)."""
    return build_layout(busybox_rootfs, tmp_path_factory.mktemp("layout") / "oci")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path) as broker:
        yield broker


@pytest.fixture
def cloud(broker: Broker) -> Iterator[Cloud]:
    cloud = Cloud(broker.port, f"itest:gw{uuid.uuid4().hex[:6]}")
    try:
        yield cloud
    finally:
        cloud.close()


@pytest.fixture
def service(
    tmp_path: Path, broker: Broker, busybox_layout: Path, cgroup_parent: str
) -> Iterator[Service]:
    """A configured daemon world (not started: call service.start())."""
    svc = Service(tmp_path, broker.port, busybox_layout, cgroup_parent=cgroup_parent)
    try:
        yield svc
    finally:
        svc.cleanup()


__all__ = [
    "IMAGE",
    "WAIT",
    "Broker",
    "Cloud",
    "Service",
    "build_layout",
    "deployed",
    "environ_of",
    "in_container",
    "never_healthy_layout",
    "os",
    "running_broker",
    "state_updates",
]
