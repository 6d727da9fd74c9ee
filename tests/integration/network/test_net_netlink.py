"""`Netlink` against the real kernel: each operation on links of its own, checked
independently with iproute2 (`ip -j`, `bridge -j`) and /sys.

Every bridge, veth and netns made here has a unique name and is removed in a fixture.
"""

from __future__ import annotations

import errno
import json
import subprocess
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ocirt.errors import NetworkError
from ocirt.network import rtnetlink as rt
from ocirt.network.netlink import NETNS_DIR, Netlink, _Socket, list_netns, remove_netns
from ocirt.network.plan import BridgePlan, EndpointPlan

from .net_helpers import free_subnets

pytestmark = pytest.mark.integration


def ip(*argv: str) -> Any:
    out = subprocess.run(["ip", "-j", *argv], capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


def link_info(name: str, netns: str | None = None) -> dict[str, Any]:
    prefix = ["-n", netns] if netns else []
    [info] = ip(*prefix, "-d", "link", "show", "dev", name)
    return info  # type: ignore[no-any-return]


def addresses_of(name: str, netns: str | None = None) -> list[str]:
    prefix = ["-n", netns] if netns else []
    [info] = ip(*prefix, "-4", "addr", "show", "dev", name)
    return [f"{a['local']}/{a['prefixlen']}" for a in info["addr_info"]]


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def suffix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def nl() -> Iterator[Netlink]:
    netlink = Netlink()
    try:
        yield netlink
    finally:
        netlink.close()


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Links (by name) and netns (`netns:<name>`) a test made; all removed afterwards."""
    made: list[str] = []
    yield made
    for name in made:
        if name.startswith("netns:"):
            remove_netns(name.removeprefix("netns:"))
        elif link_exists(name):
            subprocess.run(["ip", "link", "del", name], check=False)


@pytest.fixture
def bridge_plan(names: list[str]) -> BridgePlan:
    subnet = free_subnets(1)[0]
    name = f"ocnl{suffix()[:6]}"
    names.append(name)
    return BridgePlan(name, 1450, IPv4Interface(f"{subnet.network_address + 1}/24"), ())


def endpoint_plan(bridge: BridgePlan, names: list[str]) -> EndpointPlan:
    tag = suffix()
    plan = EndpointPlan(
        container_id=tag,
        bridge=bridge.name,
        netns_name=f"ocnl-{tag}",
        host_veth=f"vnl{tag}",
        mtu=bridge.mtu,
        address=IPv4Interface(f"{bridge.address.ip + 1}/{bridge.address.network.prefixlen}"),
        gateway=bridge.address.ip,
    )
    names.extend([plan.host_veth, f"netns:{plan.netns_name}"])
    return plan


# -- facts -------------------------------------------------------------------------------


def test_facts_match_iproute2(nl: Netlink, bridge_plan: BridgePlan) -> None:
    nl.ensure_bridge(bridge_plan)  # so there is a route and an address of our own

    expected_routes = set()
    for route in ip("-4", "route", "show", "table", "all"):
        if route.get("table") == "local":
            continue
        dst = "0.0.0.0/0" if route["dst"] == "default" else route["dst"]
        expected_routes.add((IPv4Network(dst, strict=False), route.get("dev", "")))
    assert {(r.dst, r.dev) for r in nl.host_routes()} == expected_routes
    assert (bridge_plan.address.network, bridge_plan.name) in expected_routes

    expected_addresses: dict[str, list[IPv4Address]] = {}
    for link in ip("-4", "addr", "show"):
        for addr in link["addr_info"]:
            expected_addresses.setdefault(link["ifname"], []).append(IPv4Address(addr["local"]))
    assert nl.interface_addresses() == expected_addresses
    assert nl.interface_addresses()[bridge_plan.name] == [bridge_plan.address.ip]

    all_links = [link["ifname"] for link in ip("link", "show")]
    assert sorted(nl.link_names("")) == sorted(all_links)
    assert nl.link_names(bridge_plan.name) == [bridge_plan.name]
    assert nl.exists(bridge_plan.name)
    assert nl.exists("lo")


def test_missing_links(nl: Netlink) -> None:
    missing = f"ocnlx{suffix()}"
    assert not nl.exists(missing)
    assert not nl.exists("an-interface-name-too-long-for-linux")
    assert nl.link_names(missing) == []
    nl.delete_link(missing)  # missing is fine
    assert not link_exists(missing)


# -- bridge ------------------------------------------------------------------------------


def test_ensure_bridge_creates_then_reuses(nl: Netlink, bridge_plan: BridgePlan) -> None:
    assert nl.ensure_bridge(bridge_plan) is True
    info = link_info(bridge_plan.name)
    assert info["linkinfo"]["info_kind"] == "bridge"
    assert info["mtu"] == 1450
    assert "UP" in info["flags"]
    assert addresses_of(bridge_plan.name) == [str(bridge_plan.address)]
    index = info["ifindex"]

    assert nl.ensure_bridge(bridge_plan) is False
    assert link_info(bridge_plan.name)["ifindex"] == index

    # Down but otherwise right: brought up again, not recreated.
    subprocess.run(["ip", "link", "set", bridge_plan.name, "down"], check=True)
    assert nl.ensure_bridge(bridge_plan) is False
    info = link_info(bridge_plan.name)
    assert (info["ifindex"], "UP" in info["flags"]) == (index, True)


def test_ensure_bridge_replaces_a_mismatch(nl: Netlink, bridge_plan: BridgePlan) -> None:
    nl.ensure_bridge(bridge_plan)
    index = link_info(bridge_plan.name)["ifindex"]
    other_mtu = BridgePlan(bridge_plan.name, 1400, bridge_plan.address, ())
    assert nl.ensure_bridge(other_mtu) is True
    info = link_info(bridge_plan.name)
    assert info["ifindex"] != index
    assert info["mtu"] == 1400
    assert addresses_of(bridge_plan.name) == [str(bridge_plan.address)]


def test_ensure_bridge_replaces_a_link_of_another_kind(
    nl: Netlink, bridge_plan: BridgePlan, names: list[str]
) -> None:
    peer = f"ocnlp{suffix()}"
    names.append(peer)
    subprocess.run(
        ["ip", "link", "add", bridge_plan.name, "type", "veth", "peer", "name", peer], check=True
    )
    assert nl.ensure_bridge(bridge_plan) is True
    assert link_info(bridge_plan.name)["linkinfo"]["info_kind"] == "bridge"
    assert not link_exists(peer)  # went with its veth


def test_delete_link(nl: Netlink, bridge_plan: BridgePlan) -> None:
    nl.ensure_bridge(bridge_plan)
    nl.delete_link(bridge_plan.name)
    assert not link_exists(bridge_plan.name)
    assert not nl.exists(bridge_plan.name)


def test_kernel_refusal_carries_the_errno_text(nl: Netlink, bridge_plan: BridgePlan) -> None:
    too_big = BridgePlan(bridge_plan.name, 70000, bridge_plan.address, ())
    with pytest.raises(NetworkError, match=f"setting up bridge {bridge_plan.name}: Invalid arg"):
        nl.ensure_bridge(too_big)


# -- endpoints ---------------------------------------------------------------------------


def test_endpoint_in_a_fresh_netns(nl: Netlink, bridge_plan: BridgePlan, names: list[str]) -> None:
    nl.ensure_bridge(bridge_plan)
    plan = endpoint_plan(bridge_plan, names)
    path = nl.create_endpoint(plan)
    assert path == NETNS_DIR / plan.netns_name
    assert plan.netns_name in list_netns("ocnl-")
    ns = plan.netns_name

    eth0 = link_info("eth0", ns)
    assert eth0["mtu"] == plan.mtu
    assert "UP" in eth0["flags"]
    assert eth0["linkinfo"]["info_kind"] == "veth"
    assert addresses_of("eth0", ns) == [str(plan.address)]
    assert "UP" in link_info("lo", ns)["flags"]
    assert addresses_of("lo", ns) == ["127.0.0.1/8"]
    default = [r for r in ip("-n", ns, "-4", "route", "show") if r["dst"] == "default"]
    assert [(r["gateway"], r["dev"]) for r in default] == [(str(plan.gateway), "eth0")]
    assert [link["ifname"] for link in ip("-n", ns, "link", "show")] == ["lo", "eth0"]

    host = link_info(plan.host_veth)
    assert host["master"] == bridge_plan.name
    assert host["mtu"] == plan.mtu
    assert "UP" in host["flags"]
    assert Path(f"/sys/class/net/{plan.host_veth}/brport/hairpin_mode").read_text() == "1\n"
    [port] = json.loads(
        subprocess.run(
            ["bridge", "-d", "-j", "link", "show", "dev", plan.host_veth],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert port["hairpin"] is True

    # The pair carries traffic: the netns reaches the bridge's address through it.
    ping = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "/bin/busybox",
            "ping",
            "-c",
            "3",
            "-W",
            "5",
            str(plan.gateway),
        ],
        capture_output=True,
        text=True,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr

    nl.remove_endpoint(plan.netns_name, plan.host_veth)
    assert not link_exists(plan.host_veth)
    assert not path.exists()
    assert plan.netns_name not in list_netns("ocnl-")
    nl.remove_endpoint(plan.netns_name, plan.host_veth)  # again: nothing left, no error


def test_endpoint_on_a_missing_bridge_is_undone(
    nl: Netlink, bridge_plan: BridgePlan, names: list[str]
) -> None:
    plan = endpoint_plan(bridge_plan, names)  # the bridge was never made
    with pytest.raises(NetworkError, match=f"bridge {bridge_plan.name} does not exist"):
        nl.create_endpoint(plan)
    assert not link_exists(plan.host_veth)
    assert not (NETNS_DIR / plan.netns_name).exists()


def test_endpoint_with_a_taken_veth_name_fails_with_eexist(
    nl: Netlink, bridge_plan: BridgePlan, names: list[str]
) -> None:
    nl.ensure_bridge(bridge_plan)
    plan = endpoint_plan(bridge_plan, names)
    subprocess.run(["ip", "link", "add", plan.host_veth, "type", "bridge"], check=True)
    with pytest.raises(NetworkError, match="File exists"):
        nl.create_endpoint(plan)
    assert not (NETNS_DIR / plan.netns_name).exists()


# -- the socket ----------------------------------------------------------------------------


def test_stale_replies_of_a_cut_short_exchange_are_skipped() -> None:
    with _Socket() as sock:
        # A dump whose replies nobody read, as after an exception mid-exchange.
        sock._sock.sendto(rt.encode(rt.dump_links(), 0xFFFF0000), (0, 0))
        [lo] = sock.do(rt.get_link("lo"))
        assert isinstance(lo, rt.Link)
        assert (lo.name, lo.index) == ("lo", link_info("lo")["ifindex"])


def test_a_reply_larger_than_the_buffer_is_an_error_not_a_partial_read() -> None:
    with _Socket() as sock:
        sock._buffer = bytearray(64)
        with pytest.raises(OSError, match="truncated") as caught:
            sock.do(rt.dump_links())
        assert caught.value.errno == errno.EMSGSIZE
