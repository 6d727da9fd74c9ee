"""Network plans as data: names, rules, port ranges."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from ocirt.config.model import PortProtocol
from ocirt.errors import InvalidArgument
from ocirt.network.plan import (
    Hook,
    Iface,
    PublishedPort,
    Table,
    Verdict,
    bridge_plan,
    endpoint_plan,
    firewall_plan,
    netns_name,
    netns_path,
    owner_of,
    port_candidates,
    port_rules,
    veth_name,
    veth_prefix,
)
from ocirt.network.settings import BridgeOptions, resolve

SUBNET = IPv4Network("10.231.1.0/24")


def test_names_fit_the_kernel_and_are_stable() -> None:
    name = veth_name("kanto-cm0", "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab")
    assert len(name) == 15
    assert name.startswith(veth_prefix("kanto-cm0"))
    assert name == veth_name("kanto-cm0", "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab")
    assert name != veth_name("kanto-cm1", "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab")
    assert netns_name("br", "abc").endswith("-abc")


@pytest.mark.parametrize("bad", ["", "..", "a/b", "a b", "x" * 200])
def test_unsafe_container_ids_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        netns_name("br", bad)


def test_owner_of_reads_only_this_bridges_comments() -> None:
    assert owner_of("br", "ocirt:br:abc") == "abc"
    assert owner_of("br", "ocirt:br2:abc") is None
    assert owner_of("br", "ocirt:br:") is None
    assert owner_of("br", "someone else") is None


def test_base_rules_follow_docker_hairpin_mode() -> None:
    plan = firewall_plan("br", SUBNET, icc=True, ip_masq=True)
    jumps = [r for r in plan.rules if r.verdict is Verdict.JUMP]
    assert {(r.table, r.chain, r.jump) for r in jumps} == {
        (Table.NAT, Hook.PREROUTING.value, "OCIRT-DNAT-br"),
        (Table.NAT, Hook.OUTPUT.value, "OCIRT-DNAT-br"),
        (Table.NAT, Hook.POSTROUTING.value, "OCIRT-POST-br"),
        (Table.FILTER, Hook.FORWARD.value, "OCIRT-FWD-br"),
    }
    # Both DNAT jumps only for traffic to a local address.
    assert all(r.dst_local for r in jumps if r.jump == "OCIRT-DNAT-br")
    masq = [r for r in plan.rules if r.verdict is Verdict.MASQUERADE]
    assert any(r.src == SUBNET and r.out_iface == Iface("br", negate=True) for r in masq)
    assert any(r.src == IPv4Network("127.0.0.0/8") and r.out_iface == Iface("br") for r in masq)
    assert all(r.comment == "ocirt:br:base" for r in plan.rules)


def test_icc_and_masq_switches() -> None:
    plan = firewall_plan("br", SUBNET, icc=False, ip_masq=False)
    between = [r for r in plan.rules if r.in_iface == Iface("br") and r.out_iface == Iface("br")]
    assert [r.verdict for r in between] == [Verdict.DROP]
    assert not any(
        r.verdict is Verdict.MASQUERADE and r.out_iface == Iface("br", negate=True)
        for r in plan.rules
    )
    # The published-port accept comes before the icc drop.
    fwd = [r for r in plan.rules if r.chain == "OCIRT-FWD-br"]
    assert fwd.index(next(r for r in fwd if r.ctstate == ("DNAT",))) < fwd.index(between[0])


def test_port_rules_dnat_to_the_container() -> None:
    rules = port_rules(
        "br",
        "c1",
        IPv4Address("10.231.1.5"),
        (
            PublishedPort(PortProtocol.TCP, IPv4Address("0.0.0.0"), 8080, 80),
            PublishedPort(PortProtocol.UDP, IPv4Address("127.0.0.1"), 53, 5353),
        ),
    )
    any_ip, loopback = rules
    assert (any_ip.dst, any_ip.dport, any_ip.to_port, any_ip.proto) == (
        None,
        8080,
        80,
        PortProtocol.TCP,
    )
    assert loopback.dst == IPv4Network("127.0.0.1/32")
    assert loopback.proto is PortProtocol.UDP
    assert {r.comment for r in rules} == {"ocirt:br:c1"}
    assert all(r.chain == "OCIRT-DNAT-br" and r.table is Table.NAT for r in rules)


def test_port_ranges_offer_every_port_once() -> None:
    assert list(port_candidates(5000, 5003)) == [5000, 5001, 5002, 5003]
    assert list(port_candidates(80, 0)) == [80]
    with pytest.raises(InvalidArgument):
        port_candidates(6000, 5000)
    with pytest.raises(InvalidArgument):
        port_candidates(70000, 70000)


def test_bridge_and_endpoint_plans() -> None:
    settings = resolve(BridgeOptions(name="br", ip4="10.231.1.1/24", ip_forward=False), [])
    plan = bridge_plan(settings)
    paths = [s.path for s in plan.sysctls]
    assert "/proc/sys/net/ipv4/conf/br/route_localnet" in paths
    assert "/proc/sys/net/ipv4/ip_forward" not in paths
    ep = endpoint_plan("br", "c1", 1500, IPv4Interface("10.231.1.7/24"), settings.gateway)
    assert ep.host_veth == veth_name("br", "c1")
    assert ep.gateway == IPv4Address("10.231.1.1")


def test_names_are_sha256_prefixes_whichever_implementation_computes_them() -> None:
    import hashlib

    from ocirt.network.plan import netns_prefix, veth_name

    for bridge, cid in [("kanto-cm0", "abc"), ("br-x", "c" * 64), ("b", "x.y_z-1")]:
        expected_veth = "oc" + hashlib.sha256(bridge.encode()).hexdigest()[:4]
        expected_veth += hashlib.sha256(cid.encode()).hexdigest()[:9]
        assert veth_name(bridge, cid) == expected_veth
        assert len(veth_name(bridge, cid)) == 15
        assert netns_prefix(bridge) == f"ocirt-{hashlib.sha256(bridge.encode()).hexdigest()[:8]}-"


def test_netns_path_is_the_bridge_name_under_var_run_netns() -> None:
    # ocirt-<first 8 of sha256("kanto-cm0")>-<id>: the one naming, in every spec.
    assert netns_path("kanto-cm0", "abc") == "/var/run/netns/ocirt-efa2c2ff-abc"
