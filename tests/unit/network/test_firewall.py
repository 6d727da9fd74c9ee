"""The firewall contract on both back ends, each over its recording fake (conftest).

The same suite runs as root against the real back ends in
tests/integration/network/test_net_firewall.py; here it runs without root, so the logic of
`iptables.py` and `nftables.py` (what is kept, replaced and removed) is checked in every run.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

import pytest

from ocirt.config.model import PortProtocol
from ocirt.network.firewall import Backend, Firewall
from ocirt.network.plan import PublishedPort, Rule, firewall_plan, port_rules
from tests.unit.network.conftest import FakeIptc, FakeNft

SUBNET = IPv4Network("10.231.250.0/24")
BRIDGE = "octest0"


@pytest.fixture(params=[Backend.IPTABLES, Backend.NFTABLES], ids=["iptables", "nftables"])
def make(request: pytest.FixtureRequest, iptc: FakeIptc, nft: FakeNft) -> Callable[[], Firewall]:
    """A fresh back-end object; all of them share the fake's one set of tables."""
    if request.param is Backend.IPTABLES:
        from ocirt.network.iptables import IptablesFirewall

        return IptablesFirewall
    from ocirt.network.nftables import NftablesFirewall

    return NftablesFirewall


@pytest.fixture
def firewall(make: Callable[[], Firewall]) -> Firewall:
    return make()


def ports(cid: str, bridge: str, port: int) -> tuple[Rule, ...]:
    return port_rules(
        bridge,
        cid,
        IPv4Address("10.231.250.2"),
        (
            PublishedPort(PortProtocol.TCP, IPv4Address("0.0.0.0"), port, 80),
            PublishedPort(PortProtocol.UDP, IPv4Address("127.0.0.1"), port, 81),
        ),
    )


def test_install_is_idempotent_and_keeps_container_rules(firewall: Firewall) -> None:
    plan = firewall_plan(BRIDGE, SUBNET, icc=True, ip_masq=True)
    firewall.install(plan)
    assert sorted(firewall.listing(BRIDGE)) == sorted((r.chain, r.comment) for r in plan.rules)
    firewall.add_rules(ports("c1", BRIDGE, 30001))
    firewall.install(plan)
    assert firewall.owners(BRIDGE) == {"base", "c1"}
    assert len(firewall.listing(BRIDGE)) == len(plan.rules) + 2


def test_a_changed_plan_replaces_the_base_rules(firewall: Firewall) -> None:
    firewall.install(firewall_plan(BRIDGE, SUBNET, icc=True, ip_masq=True))
    smaller = firewall_plan(BRIDGE, SUBNET, icc=False, ip_masq=False)
    firewall.install(smaller)
    assert len(firewall.listing(BRIDGE)) == len(smaller.rules)


def test_remove_owner_removes_only_that_owner(firewall: Firewall) -> None:
    firewall.install(firewall_plan(BRIDGE, SUBNET, icc=False, ip_masq=False))
    firewall.add_rules(ports("c1", BRIDGE, 30001))
    firewall.add_rules(ports("c2", BRIDGE, 30002))
    firewall.remove_owner(BRIDGE, "c1")
    assert firewall.owners(BRIDGE) == {"base", "c2"}
    assert ("OCIRT-DNAT-" + BRIDGE, f"ocirt:{BRIDGE}:c2") in firewall.listing(BRIDGE)
    firewall.remove_owner(BRIDGE, "never-there")
    assert firewall.owners(BRIDGE) == {"base", "c2"}


def test_bridges_do_not_see_each_other(firewall: Firewall) -> None:
    other = "octest1"
    firewall.install(firewall_plan(BRIDGE, SUBNET, icc=True, ip_masq=True))
    firewall.install(firewall_plan(other, IPv4Network("10.231.251.0/24"), icc=True, ip_masq=True))
    firewall.add_rules(ports("c1", other, 30003))
    assert firewall.owners(BRIDGE) == {"base"}
    firewall.uninstall(other)
    assert firewall.owners(BRIDGE) == {"base"}
    assert firewall.listing(other) == []


def test_uninstall_leaves_nothing(firewall: Firewall) -> None:
    firewall.install(firewall_plan(BRIDGE, SUBNET, icc=True, ip_masq=True))
    firewall.add_rules(ports("c1", BRIDGE, 30001))
    firewall.uninstall(BRIDGE)
    assert firewall.listing(BRIDGE) == []
    assert firewall.owners(BRIDGE) == set()
    firewall.uninstall(BRIDGE)  # twice: nothing to do


def test_a_new_process_finds_the_rules_again(make: Callable[[], Firewall]) -> None:
    make().install(firewall_plan(BRIDGE, SUBNET, icc=True, ip_masq=True))
    make().add_rules(ports("c1", BRIDGE, 30001))
    assert make().owners(BRIDGE) == {"base", "c1"}


def test_add_no_rules(firewall: Firewall) -> None:
    firewall.add_rules(())
    assert firewall.owners(BRIDGE) == set()
