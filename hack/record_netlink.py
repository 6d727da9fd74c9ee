#!/usr/bin/env python3
"""Record real rtnetlink replies of this kernel as test fixtures for the rtnetlink codec.

Run as root: `python3 hack/record_netlink.py [OUTDIR]` (default tests/unit/network/data).
It makes a throw-away network namespace with a known set-up (see LAYOUT below), sends
ocirt's own requests from inside it and writes every datagram the kernel answered with,
one hex line per datagram, into OUTDIR/<name>.hex. The namespace is removed again, even on
failure. tests/unit/network/test_rtnetlink_recorded.py decodes these bytes with
`ocirt.network.rtnetlink` and with pyroute2 (the oracle) and checks them against LAYOUT.

The namespace's contents are fixed here so that the tests can assert on them: names,
addresses, MTUs and routes; only interface indexes depend on the kernel.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocirt.network import rtnetlink as rt  # noqa: E402

# What the namespace holds; the tests repeat these facts (LAYOUT.txt is written beside).
BRIDGE = "rec-br0"
BRIDGE_MTU = 1400
BRIDGE_ADDRESS = "10.77.0.1/24"
VETH = "rec-veth0"
VETH_PEER = "rec-veth1"
VETH_MTU = 1400  # as the bridge: a bridge takes on the smallest MTU of its ports
PEER_ADDRESS = "10.78.0.2/16"
GATEWAY = "10.78.0.1"
MISSING = "rec-missing"

LAYOUT = f"""\
namespace: lo up; {BRIDGE} (bridge, mtu {BRIDGE_MTU}, {BRIDGE_ADDRESS}, up);
{VETH} (veth, mtu {VETH_MTU}, master {BRIDGE}, up) <-> {VETH_PEER} (veth, mtu {VETH_MTU},
{PEER_ADDRESS}, up); default route via {GATEWAY} on {VETH_PEER}.
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


def _build(ns: str) -> None:
    _ip("netns", "add", ns)
    n = ["-n", ns]
    _ip(*n, "link", "set", "lo", "up")
    _ip(*n, "link", "add", BRIDGE, "mtu", str(BRIDGE_MTU), "type", "bridge")
    _ip(*n, "addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE)
    _ip(*n, "link", "set", BRIDGE, "up")
    mtu = str(VETH_MTU)
    _ip(*n, "link", "add", VETH, "mtu", mtu, "type", "veth", "peer", "name", VETH_PEER, "mtu", mtu)
    _ip(*n, "link", "set", VETH, "master", BRIDGE, "up")
    _ip(*n, "addr", "add", PEER_ADDRESS, "dev", VETH_PEER)
    _ip(*n, "link", "set", VETH_PEER, "up")
    _ip(*n, "route", "add", "default", "via", GATEWAY, "dev", VETH_PEER)


def _exchange(sock: socket.socket, request: rt.Request, seq: int) -> list[bytes]:
    """Send one request; every datagram of the answer, up to the ack or NLMSG_DONE."""
    sock.sendto(rt.encode(request, seq), (0, 0))
    datagrams: list[bytes] = []
    while True:
        data = sock.recv(1 << 16)
        datagrams.append(data)
        if any(isinstance(m.body, rt.Ack | rt.Done) for m in rt.decode(data)):
            return datagrams


def _record_inside(out: Path) -> None:
    """Runs inside the namespace (re-invoked through `ip netns exec`)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    # ocirt's socket options (netlink.py): ext-ack texts, no echo of the request.
    sock.setsockopt(rt.SOL_NETLINK, rt.NETLINK_EXT_ACK, 1)
    sock.setsockopt(rt.SOL_NETLINK, rt.NETLINK_CAP_ACK, 1)
    sock.bind((0, 0))
    # The index of the veth, for a set_link whose ack is recorded.
    links = [
        m.body
        for d in _exchange(sock, rt.dump_links(), 1)
        for m in rt.decode(d)
        if isinstance(m.body, rt.Link)
    ]
    veth_index = next(link.index for link in links if link.name == VETH)
    requests = {
        "getlink_dump": rt.dump_links(),
        "getaddr_dump": rt.dump_addresses(),
        "getroute_dump": rt.dump_routes(),
        "getlink_bridge": rt.get_link(BRIDGE),
        "getlink_missing": rt.get_link(MISSING),
        "setlink_ack": rt.set_link(veth_index, up=True),
        "newaddr_exists": rt.add_address(
            next(link.index for link in links if link.name == BRIDGE),
            IPv4Interface(BRIDGE_ADDRESS),
        ),
        "newroute_exists": rt.add_default_route(IPv4Address(GATEWAY)),
    }
    out.mkdir(parents=True, exist_ok=True)
    for seq, (name, request) in enumerate(requests.items(), start=100):
        datagrams = _exchange(sock, request, seq)
        (out / f"{name}.hex").write_text("".join(d.hex() + "\n" for d in datagrams))
        print(f"{name}: {len(datagrams)} datagram(s), seq {seq}")
    (out / "LAYOUT.txt").write_text(LAYOUT)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--inside":
        _record_inside(Path(sys.argv[2]))
        return 0
    if os.geteuid() != 0:
        print("record_netlink: run as root (it makes a network namespace)", file=sys.stderr)
        return 1
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/unit/network/data"
    ns = f"ocirt-rec-{uuid.uuid4().hex[:8]}"
    try:
        _build(ns)
        subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, __file__, "--inside", str(out.resolve())],
            check=True,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
