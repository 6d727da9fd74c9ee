"""iptables.py over a fake python-iptables (conftest.FakeIptc): how rules are spelled, where
jumps go, that changes are committed together, and how libiptc errors come out."""

from __future__ import annotations

import builtins
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ocirt.config.model import PortProtocol
from ocirt.errors import NetworkError
from ocirt.network import iptables
from ocirt.network.iptables import IptablesFirewall
from ocirt.network.plan import Iface, Rule, Table, Verdict, firewall_plan
from tests.unit.network.conftest import FakeIptc

SUBNET = IPv4Network("10.231.250.0/24")


def matches(rule: Any) -> dict[str, dict[str, Any]]:
    return {m.name: {k: v for k, v in vars(m).items() if k != "name"} for m in rule.matches}


def test_a_dnat_rule(iptc: FakeIptc) -> None:
    rule = IptablesFirewall()._rule(
        Rule(
            Table.NAT,
            "OCIRT-DNAT-br",
            Verdict.DNAT,
            "ocirt:br:c1",
            proto=PortProtocol.UDP,
            dst=IPv4Network("127.0.0.1/32"),
            dport=5353,
            to_address=IPv4Address("10.0.0.2"),
            to_port=53,
        )
    )
    assert (rule.protocol, rule.dst, rule.src) == ("udp", "127.0.0.1/32", None)
    assert matches(rule) == {"udp": {"comment": None, "dport": "5353"}, "comment": {
        "comment": "ocirt:br:c1"}}  # fmt: skip
    assert rule.target.name == "DNAT"
    assert rule.target.to_destination == "10.0.0.2:53"


def test_interfaces_local_addresses_and_conntrack(iptc: FakeIptc) -> None:
    rule = IptablesFirewall()._rule(
        Rule(
            Table.NAT,
            "OCIRT-POST-br",
            Verdict.MASQUERADE,
            "ocirt:br:base",
            src=SUBNET,
            in_iface=Iface("br"),
            out_iface=Iface("br", negate=True),
            dst_local=True,
            ctstate=("RELATED", "ESTABLISHED"),
        )
    )
    assert (rule.src, rule.in_interface, rule.out_interface) == (str(SUBNET), "br", "!br")
    found = matches(rule)
    assert found["addrtype"]["dst_type"] == "LOCAL"
    assert found["conntrack"]["ctstate"] == "RELATED,ESTABLISHED"
    assert rule.target.name == "MASQUERADE"


def test_a_jump_needs_its_target(iptc: FakeIptc) -> None:
    fw = IptablesFirewall()
    assert fw._rule(Rule(Table.FILTER, "FORWARD", Verdict.JUMP, "c", jump="X")).target.name == "X"
    with pytest.raises(NetworkError, match="needs a target chain"):
        fw._rule(Rule(Table.FILTER, "FORWARD", Verdict.JUMP, "c"))


def test_jumps_go_first_in_the_built_in_chains(iptc: FakeIptc) -> None:
    foreign = iptc.Rule()
    foreign.create_match("comment").comment = "docker's"
    iptc.committed["filter"]["FORWARD"].append(foreign)
    plan = firewall_plan("br", SUBNET, icc=True, ip_masq=True)
    IptablesFirewall().install(plan)
    forward = iptc.rules("filter", "FORWARD")
    assert forward[0].target.name == "OCIRT-FWD-br"
    assert forward[1:] == [foreign]
    # Our own chains keep the plan's order.
    ours = [r.target.name for r in iptc.rules("filter", "OCIRT-FWD-br")]
    assert ours == [r.verdict.value for r in plan.rules if r.chain == "OCIRT-FWD-br"]


def test_changes_are_committed_together_or_not_at_all(iptc: FakeIptc) -> None:
    fw = IptablesFirewall()
    fw.install(firewall_plan("br", SUBNET, icc=True, ip_masq=True))
    assert iptc.commits == 2  # nat and filter, once each
    before = {t: {c: list(r) for c, r in chains.items()} for t, chains in iptc.committed.items()}
    iptc.fail_commit = iptc.IPTCError("Resource temporarily unavailable")
    with pytest.raises(NetworkError, match="iptables: Resource temporarily unavailable"):
        fw.uninstall("br")
    assert iptc.committed == before


def test_an_xtables_error_is_a_network_error(iptc: FakeIptc) -> None:
    iptc.fail_commit = iptc.xtables.XTablesError("can't find target")
    with pytest.raises(NetworkError, match="can't find target"):
        IptablesFirewall().add_rules([Rule(Table.FILTER, "FORWARD", Verdict.ACCEPT, "ocirt:br:c1")])


def test_the_xtables_lock_is_taken(iptc: FakeIptc) -> None:
    IptablesFirewall().owners("br")
    assert Path(iptables.XTABLES_LOCK).exists()


def test_without_libiptc_the_error_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "iptc", raising=False)
    real_import = builtins.__import__

    def refuse(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "iptc":
            raise OSError("libiptc.so: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(NetworkError, match="python-iptables cannot load libiptc"):
        IptablesFirewall()
