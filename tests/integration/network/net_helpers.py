"""Helpers of the bridge-network suite: containers, netns sockets, leftovers."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from ocirt import native
from ocirt.network.bridge import Attachment, BridgeNetwork, make_firewall
from ocirt.network.firewall import Backend
from ocirt.network.netlink import Netlink, list_netns, remove_netns
from ocirt.network.plan import netns_prefix, veth_prefix
from ocirt.runtime.runc import Runc

HERE = Path(__file__).resolve().parent
CLONE_NEWNET = 0x40000000


def free_subnets(count: int) -> list[IPv4Network]:
    """Random /24s of 10.231.0.0/16 that no host route overlaps."""
    nl = Netlink()
    try:
        routed = [r.dst for r in nl.host_routes() if r.dst.prefixlen > 0]
    finally:
        nl.close()
    choices = [n for n in IPv4Network("10.231.0.0/16").subnets(new_prefix=24)]
    random.shuffle(choices)
    picked = [n for n in choices if not any(n.overlaps(r) for r in routed)][:count]
    assert len(picked) == count
    return picked


def random_port() -> int:
    # Below the ephemeral range (32768+), where other processes take ports at random.
    return random.randrange(20000, 28000, 10)


@dataclass
class Net:
    network: BridgeNetwork
    name: str
    subnet: IPv4Network
    state_dir: Path
    backend: Backend


def scrub(net: Net) -> None:
    """Remove the network's parts whatever state the test left them in."""
    try:
        net.network.teardown()
    finally:
        firewall = make_firewall(net.backend)
        firewall.uninstall(net.name)
        nl = Netlink()
        try:
            for link in nl.link_names(veth_prefix(net.name)):
                nl.delete_link(link)
            nl.delete_link(net.name)
        finally:
            nl.close()
        for ns in list_netns(netns_prefix(net.name)):
            remove_netns(ns)


@dataclass
class Container:
    id: str
    attachment: Attachment
    runc: Runc

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runc", "--root", str(self.runc.root), "exec", self.id, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def wait_listening(self, port: int, udp: bool = False) -> None:
        flag = "-lun" if udp else "-ltn"
        script = (
            f"i=0; until netstat {flag} | grep -q ':{port} '; do "
            "i=$((i+1)); [ $i -gt 1000 ] && exit 1; usleep 10000; done"
        )
        assert self.exec("sh", "-c", script).returncode == 0, f"port {port} never listened"


def write_bundle(
    dest: Path, rootfs: Path, args: list[str], attachment: Attachment, hostname: str
) -> None:
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if attachment.netns_path is not None:
        namespaces.append({"type": "network", "path": str(attachment.netns_path)})
    caps = ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]
    files = attachment.files
    binds = [
        (files.hosts, "/etc/hosts"),
        (files.resolv_conf, "/etc/resolv.conf"),
        (files.hostname, "/etc/hostname"),
    ]
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/bin:/sbin:/usr/bin"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            *(
                {
                    "destination": target,
                    "type": "bind",
                    "source": str(source),
                    "options": ["rbind", "rprivate"],
                }
                for source, target in binds
            ),
        ],
        "linux": {"namespaces": namespaces},
    }
    (dest / "config.json").write_text(json.dumps(config))


def server_args(name: str, tcp_port: int = 80, udp_port: int = 81) -> list[str]:
    """A container that answers `name` over HTTP and `name:<msg>` over UDP."""
    script = (
        f"mkdir -p /www && echo {name} > /www/index.html && "
        f"(udptool serve {udp_port} {name}: &) && exec httpd -f -p {tcp_port} -h /www"
    )
    return ["sh", "-c", script]


def in_netns(path: Path | None, fn: Callable[[], object]) -> object:
    """Run fn in a thread that joined the netns at `path` (None = this one). Sockets made
    there stay in that netns."""
    result: list[object] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            if path is not None:
                with open(path) as ns:
                    native.setns(ns.fileno(), CLONE_NEWNET)
            result.append(fn())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result[0]


def http_get(address: str, port: int, netns: Path | None = None) -> str:
    import socket

    def get() -> str:
        with socket.create_connection((address, port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
        return data.decode().split("\r\n\r\n", 1)[1].strip()

    return str(in_netns(netns, get))


def udp_ask(address: str, port: int, message: str, netns: Path | None = None) -> str:
    import socket

    def ask() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            sock.sendto(message.encode(), (address, port))
            return sock.recv(1024).decode()

    return str(in_netns(netns, ask))


@dataclass
class Remote:
    """A "remote host": a netns routed to the host over its own veth pair."""

    netns: Path
    host_address: str
    address: str


def leftovers(net: Net) -> dict[str, object]:
    """What of the network's containers is left: rule owners, veths, netns, leases."""
    firewall = make_firewall(net.backend)
    nl = Netlink()
    try:
        veths = nl.link_names(veth_prefix(net.name))
    finally:
        nl.close()
    leases = (
        json.loads((net.state_dir / "leases.json").read_text())["leases"]
        if (net.state_dir / "leases.json").exists()
        else {}
    )
    return {
        "owners": firewall.owners(net.name) - {"base"},
        "veths": veths,
        "netns": list_netns(netns_prefix(net.name)),
        "leases": leases,
    }


def unique_id() -> str:
    return f"t{uuid.uuid4().hex[:12]}-{int(time.time())}"
