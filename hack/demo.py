#!/usr/bin/env python3
"""ocirt's main job on one machine, with no internet: the daemon as a device runs it,
managed over MQTT as a cloud would manage it.

1. A busybox OCI image is built from Debian's busybox-static (loaded offline into the
   daemon's store with `ocirt image load` once the daemon is up).
2. mosquitto is started on 127.0.0.1 (a private port), with a small responder that plays
   the edge connector's part: it answers the thing bootstrap (`edge/thing/request`).
3. `ocirt daemon` starts with a Kanto config file (bridge kanto-cm0, json-file logs).
4. The `createWithConfig` example of Kanto's ContainerFactory API doc (sample values filled
   in) goes over MQTT. The response, the twin updates and the container's logs are shown.
5. The daemon keeps serving until Ctrl-C (or at once with --once); then the demo container
   is removed and the daemon and broker are stopped. The bridge stays, as a service's does
   (`ocirt network prune --config /var/lib/ocirt-demo/config.json` removes it).

Run as root from the checkout: ./hack/run.sh [--once]
"""

from __future__ import annotations

import argparse
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
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parents[1]
BASE = Path(os.environ.get("OCIRT_DEMO_DIR", "/var/lib/ocirt-demo"))
EXEC_ROOT = Path("/run/ocirt-demo")
DEVICE, TENANT = "demo:device", "demo-tenant"
THING = f"{DEVICE}:edge:containers"
IMAGE = "localhost/busybox:demo"


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise SystemExit(f"demo: timed out waiting for {what}")


def ocirt(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocirt.cli.main", *argv], text=True, capture_output=True
    )


def build_image() -> Path:
    say(f"Building a busybox image layout for {IMAGE}")
    rootfs, layout = BASE / "image-rootfs", BASE / "image-layout"
    for path in (rootfs, layout):
        shutil.rmtree(path, ignore_errors=True)
    subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(rootfs)], check=True)
    subprocess.run(
        [sys.executable, str(REPO / "hack" / "mkimage.py"), str(layout), "demo", str(rootfs)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return layout


def load_image(layout: Path, sock: Path) -> None:
    say(f"ocirt image load {layout} --name localhost/busybox (into the daemon's store)")
    loaded = ocirt(
        "image", "--socket", str(sock), "load", str(layout), "--name", "localhost/busybox"
    )
    print(loaded.stdout.strip() or loaded.stderr.strip())
    if loaded.returncode != 0:
        raise SystemExit("demo: image load failed")


class Cloud:
    """The cloud side and the edge connector's bootstrap answer, on one MQTT client."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-{uuid.uuid4()}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.client.connect("127.0.0.1", port, 20)
        self.client.loop_start()
        if not self.connected.wait(30):
            raise SystemExit("demo: could not connect to the broker")

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        client.subscribe([("edge/thing/request", 1), (f"e/{TENANT}/#", 1), ("command//+/res/#", 1)])
        self.connected.set()

    def _on_message(self, client: paho.Client, _: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic == "edge/thing/request":
            identity = {"deviceId": DEVICE, "tenantId": TENANT, "policyId": "demo:policy"}
            client.publish("edge/thing/response", json.dumps(identity), qos=1)
            return
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = msg.payload.decode(errors="replace")
        with self.lock:
            self.messages.append((msg.topic, body))
        if msg.topic.startswith("e/"):
            path = body.get("path", "") if isinstance(body, dict) else ""
            value = body.get("value") if isinstance(body, dict) else None
            if path.endswith("/status/state"):
                print(f"   twin {path.split('/')[2]}: state {value.get('status')}", flush=True)
            elif path.startswith("/features/Container:") and path.count("/") == 2:
                print(f"   twin {path.split('/')[2]}: {body['topic'].rsplit('/', 1)[1]}")

    def request(self, seed: dict[str, Any]) -> tuple[str, Any]:
        req_id = uuid.uuid4().hex[:8]
        topic = f"command//{THING}/req/{req_id}/createWithConfig"
        print(f"-> {topic}")
        self.client.publish(topic, json.dumps(seed), qos=1).wait_for_publish(30)
        prefix = f"command//{THING}/res/{req_id}/"

        def answered() -> tuple[str, Any] | None:
            with self.lock:
                return next((m for m in self.messages if m[0].startswith(prefix)), None)

        return wait_until(answered, "the createWithConfig response", 120)  # type: ignore[no-any-return]


def seed_message() -> dict[str, Any]:
    """The createWithConfig example of Kanto's ContainerFactory API doc, sample values filled."""
    shared = BASE / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "motd").write_text("mounted from the host\n")
    script = (
        "cat /shared/motd; grep ctrhost /etc/hosts; "
        'while true; do echo "$GREETING from $(hostname) at $(date)"; sleep 2; done'
    )
    return {
        "topic": "demo/device:edge:containers/things/live/messages/createWithConfig",
        "headers": {
            "response-required": True,
            "content-type": "application/json",
            "correlation-id": str(uuid.uuid4()),
        },
        "path": "/features/ContainerFactory/inbox/messages/createWithConfig",
        "value": {
            "imageRef": IMAGE,
            "start": True,
            "config": {
                "domainName": "demo-domain",
                "hostName": "demo-host",
                "env": ["GREETING=hello"],
                "cmd": ["/bin/sh", "-c", script],
                "privileged": False,
                "extraHosts": ["ctrhost:host_ip"],
                "extraCapabilities": [],
                "networkMode": "bridge",
                "openStdin": False,
                "tty": False,
                "mountPoints": [
                    {"source": str(shared), "destination": "/shared", "propagationMode": "rprivate"}
                ],
                "decryption": {"keys": [], "recipients": []},
                "devices": [
                    {
                        "pathOnHost": "/dev/null",
                        "pathInContainer": "/dev/demo-null",
                        "cgroupPermissions": "rwm",
                    }
                ],
                "restartPolicy": {"type": "unless-stopped", "maxRetryCount": 0, "retryTimeout": 0},
                "portMappings": [
                    {
                        "proto": "tcp",
                        "containerPort": 80,
                        "hostIP": "0.0.0.0",
                        "hostPort": 5000,
                        "hostPortEnd": 5005,
                    }
                ],
                "log": {
                    "type": "json-file",
                    "maxFiles": 2,
                    "maxSize": "100M",
                    "rootDir": "",
                    "mode": "blocking",
                    "maxBufferSize": "1M",
                },
                "resources": {"memory": "64M", "memoryReservation": "", "memorySwap": ""},
            },
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="clean up and exit after the demo")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: run as root")
    BASE.mkdir(parents=True, exist_ok=True)
    layout = build_image()

    port = free_port()
    conf = BASE / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    say(f"Starting mosquitto on 127.0.0.1:{port}")
    # Own sessions: Ctrl-C reaches the demo only, which then cleans up in order.
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL, start_new_session=True
    )
    daemon: subprocess.Popen[bytes] | None = None
    cloud: Cloud | None = None
    container_id = ""
    try:
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, "mosquitto")
        cloud = Cloud(port)
        config = {
            "log": {"log_level": "INFO", "log_file": str(BASE / "ocirt.log")},
            "manager": {"home_dir": str(BASE / "home"), "exec_root_dir": str(EXEC_ROOT)},
            "things": {"home_dir": str(BASE / "things"), "features": ["ContainerFactory"]},
            "deployment": {"enable": False},
            "connection": {"broker_url": f"tcp://127.0.0.1:{port}"},
        }
        (BASE / "config.json").write_text(json.dumps(config, indent=2))
        say(f"Starting `ocirt daemon --config {BASE / 'config.json'}` (log: {BASE}/ocirt.log)")
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ocirt.cli.main",
                "daemon",
                "--config",
                str(BASE / "config.json"),
            ],
            start_new_session=True,
        )
        sock = EXEC_ROOT / "ocirt.sock"
        wait_until(lambda: sock.exists() or daemon.poll() is not None, "the daemon")
        if daemon.poll() is not None:
            raise SystemExit("demo: the daemon exited; see its log")
        load_image(layout, sock)
        wait_until(lambda: any(t.startswith("e/") for t, _ in cloud.messages), "the bootstrap")

        say("Sending the seed createWithConfig message over MQTT")
        topic, body = cloud.request(seed_message())
        print(f"<- {topic}\n{json.dumps(body, indent=2)}")
        container_id = body.get("value", "") if isinstance(body, dict) else ""
        if not container_id:
            return 1
        time.sleep(3)
        say(f"ocirt logs {container_id[:12]}")
        logs = ocirt("logs", "--socket", str(sock), container_id)
        print(logs.stdout + logs.stderr, end="")
        say("ocirt list")
        print(ocirt("list", "--socket", str(sock)).stdout, end="")
        if not args.once:
            say("The daemon is serving. Ctrl-C removes the demo container and stops it.")
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            stop.wait()
        return 0
    finally:
        if container_id:
            ocirt("remove", "--socket", str(EXEC_ROOT / "ocirt.sock"), "-f", container_id)
        for proc in (daemon, broker):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        if cloud is not None:
            cloud.client.loop_stop()


if __name__ == "__main__":
    sys.exit(main())
