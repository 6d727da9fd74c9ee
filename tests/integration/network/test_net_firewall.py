"""The firewall contract: both back ends keep, list and remove rules the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network

import pytest

from ocirt.config.model import PortProtocol
from ocirt.network.bridge import make_firewall
from ocirt.network.firewall import Backend, Firewall
from ocirt.network.plan import PublishedPort, Rule, firewall_plan, port_rules

pytestmark = pytest.mark.integration

SUBNET = IPv4Network("10.231.250.0/24")


@pytest.fixture
def bridge() -> str:
    return f"oct{uuid.uuid4().hex[:6]}"


@pytest.fixture
def firewall(backend: Backend, bridge: str) -> Iterator[Firewall]:
    fw = make_firewall(backend)
    try:
        yield fw
    finally:
        fw.uninstall(bridge)


def _ports(cid: str, bridge: str, port: int) -> tuple[Rule, ...]:
    return port_rules(
        bridge,
        cid,
        IPv4Address("10.231.250.2"),
        (
            PublishedPort(PortProtocol.TCP, IPv4Address("0.0.0.0"), port, 80),
            PublishedPort(PortProtocol.UDP, IPv4Address("127.0.0.1"), port, 81),
        ),
    )


def test_install_is_idempotent_and_keeps_container_rules(firewall: Firewall, bridge: str) -> None:
    plan = firewall_plan(bridge, SUBNET, icc=True, ip_masq=True)
    firewall.install(plan)
    base = sorted(firewall.listing(bridge))
    assert len(base) == len(plan.rules)
    firewall.add_rules(_ports("c1", bridge, 30001))
    firewall.install(plan)
    assert firewall.owners(bridge) == {"base", "c1"}
    assert len(firewall.listing(bridge)) == len(plan.rules) + 2


def test_remove_owner_removes_only_that_owner(firewall: Firewall, bridge: str) -> None:
    firewall.install(firewall_plan(bridge, SUBNET, icc=False, ip_masq=False))
    firewall.add_rules(_ports("c1", bridge, 30001))
    firewall.add_rules(_ports("c2", bridge, 30002))
    firewall.remove_owner(bridge, "c1")
    assert firewall.owners(bridge) == {"base", "c2"}
    assert ("OCIRT-DNAT-" + bridge, f"ocirt:{bridge}:c2") in firewall.listing(bridge)


def test_bridges_do_not_see_each_other(firewall: Firewall, bridge: str) -> None:
    other = f"oct{uuid.uuid4().hex[:6]}"
    try:
        firewall.install(firewall_plan(bridge, SUBNET, icc=True, ip_masq=True))
        firewall.install(
            firewall_plan(other, IPv4Network("10.231.251.0/24"), icc=True, ip_masq=True)
        )
        firewall.add_rules(_ports("c1", other, 30003))
        assert firewall.owners(bridge) == {"base"}
        firewall.uninstall(other)
        assert firewall.owners(bridge) == {"base"}
        assert firewall.listing(other) == []
    finally:
        firewall.uninstall(other)


def test_uninstall_leaves_nothing(firewall: Firewall, bridge: str) -> None:
    firewall.install(firewall_plan(bridge, SUBNET, icc=True, ip_masq=True))
    firewall.add_rules(_ports("c1", bridge, 30001))
    firewall.uninstall(bridge)
    assert firewall.listing(bridge) == []
    assert firewall.owners(bridge) == set()
    firewall.uninstall(bridge)  # twice is fine
