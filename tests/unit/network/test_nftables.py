"""nftables.py: rules as nft JSON, and the batches it sends to a fake `nft -j` (conftest)."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from ocirt.config.model import PortProtocol
from ocirt.errors import NetworkError
from ocirt.network.nftables import NftablesFirewall, expressions
from ocirt.network.plan import Iface, Rule, Table, Verdict, firewall_plan
from tests.unit.network.conftest import FakeNft

SUBNET = IPv4Network("10.231.250.0/24")


def test_dnat_of_a_published_port() -> None:
    rule = Rule(
        Table.NAT,
        "OCIRT-DNAT-br",
        Verdict.DNAT,
        "ocirt:br:c1",
        proto=PortProtocol.TCP,
        dst=IPv4Network("127.0.0.1/32"),
        dport=8080,
        to_address=IPv4Address("10.0.0.2"),
        to_port=80,
    )
    assert expressions(rule) == [
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                   "right": "127.0.0.1"}},
        {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                   "right": 8080}},
        {"dnat": {"addr": "10.0.0.2", "port": 80}},
    ]  # fmt: skip


def test_masquerade_with_a_prefix_a_negated_interface_and_ct_status() -> None:
    rule = Rule(
        Table.NAT,
        "OCIRT-POST-br",
        Verdict.MASQUERADE,
        "ocirt:br:base",
        src=SUBNET,
        out_iface=Iface("br", negate=True),
        ctstate=("DNAT",),
    )
    assert expressions(rule) == [
        {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "br"}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                   "right": {"prefix": {"addr": "10.231.250.0", "len": 24}}}},
        {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": ["dnat"]}},
        {"masquerade": None},
    ]  # fmt: skip


def test_jump_to_local_addresses_and_conntrack_states() -> None:
    jump = Rule(Table.NAT, "PREROUTING", Verdict.JUMP, "c", dst_local=True, jump="OCIRT-DNAT-br")
    assert expressions(jump) == [
        {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}},
                   "right": "local"}},
        {"jump": {"target": "OCIRT-DNAT-br"}},
    ]  # fmt: skip
    accept = Rule(
        Table.FILTER,
        "OCIRT-FWD-br",
        Verdict.ACCEPT,
        "c",
        in_iface=Iface("br"),
        ctstate=("RELATED", "ESTABLISHED"),
    )
    assert expressions(accept) == [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "br"}},
        {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                   "right": ["related", "established"]}},
        {"accept": None},
    ]  # fmt: skip
    assert expressions(Rule(Table.FILTER, "X", Verdict.DROP, "c")) == [{"drop": None}]


def batches(nft: FakeNft) -> list[list[dict[str, Any]]]:
    return [payload["nftables"] for args, payload in nft.calls if payload is not None]


def test_install_sends_one_batch_in_the_order_nft_needs(nft: FakeNft) -> None:
    plan = firewall_plan("br", SUBNET, icc=True, ip_masq=True)
    NftablesFirewall().install(plan)
    (batch,) = batches(nft)
    assert batch[0] == {"add": {"table": {"family": "ip", "name": "ocirt"}}}
    base_chains = [c["add"]["chain"] for c in batch[1:5]]
    assert [(c["name"], c["hook"], c["type"], c["prio"]) for c in base_chains] == [
        ("PREROUTING", "prerouting", "nat", -100),
        ("OUTPUT", "output", "nat", -100),
        ("POSTROUTING", "postrouting", "nat", 100),
        ("FORWARD", "forward", "filter", 0),
    ]
    assert [c["add"]["chain"]["name"] for c in batch[5:8]] == [
        "OCIRT-DNAT-br",
        "OCIRT-POST-br",
        "OCIRT-FWD-br",
    ]
    rules = [c["add"]["rule"] for c in batch[8:]]
    # Our chains are filled before the jumps into them are added.
    assert [r["chain"] for r in rules] == [r.chain for r in plan.rules if not r.builtin] + [
        r.chain for r in plan.rules if r.builtin
    ]
    assert all(r["comment"] == "ocirt:br:base" for r in rules)


def test_install_again_deletes_the_old_base_rules_by_handle(nft: FakeNft) -> None:
    plan = firewall_plan("br", SUBNET, icc=True, ip_masq=True)
    NftablesFirewall().install(plan)
    handles = sorted(r["handle"] for rules in nft.table.values() for r in rules)  # type: ignore[union-attr]
    NftablesFirewall().install(plan)
    deleted = [c["delete"]["rule"]["handle"] for c in batches(nft)[1] if "delete" in c]
    assert sorted(deleted) == handles


def test_uninstall_drops_the_table_with_the_last_bridge(nft: FakeNft) -> None:
    fw = NftablesFirewall()
    fw.install(firewall_plan("br", SUBNET, icc=True, ip_masq=True))
    fw.install(firewall_plan("br2", IPv4Network("10.9.0.0/24"), icc=True, ip_masq=True))
    fw.uninstall("br")
    assert nft.table is not None
    assert "OCIRT-FWD-br" not in nft.table
    fw.uninstall("br2")
    assert nft.table is None


def test_uninstall_when_another_ocirt_dropped_the_table_meanwhile(
    nft: FakeNft, monkeypatch: pytest.MonkeyPatch
) -> None:
    fw = NftablesFirewall()
    fw.install(firewall_plan("br", SUBNET, icc=True, ip_masq=True))
    real_run = nft.run

    def run(argv: list[str], input: str | None = None, **kw: Any) -> Any:
        # The other ocirt removes the table between our listing and our delete.
        if input is not None and '"delete": {"table"' in input:
            nft.table = None
            return subprocess.CompletedProcess(
                argv, 1, "", "Error: Could not process rule: No such file or directory"
            )
        return real_run(argv, input, **kw)

    monkeypatch.setattr(nft, "run", run)
    monkeypatch.setattr(subprocess, "run", run)
    fw.uninstall("br")  # gone is what was wanted: no error
    assert nft.table is None


def test_nothing_to_do_sends_nothing(nft: FakeNft) -> None:
    NftablesFirewall().add_rules([])
    NftablesFirewall().remove_owner("br", "c1")  # no table yet: a listing, no batch
    assert batches(nft) == []
    assert NftablesFirewall().owners("br") == set()


def test_nft_errors(nft: FakeNft) -> None:
    fw = NftablesFirewall()
    fw.install(firewall_plan("br", SUBNET, icc=True, ip_masq=True))
    nft.fail_next = "Error: Could not process rule: Permission denied"
    with pytest.raises(NetworkError, match="nft failed: Error: Could not process rule"):
        fw.owners("br")
    nft.raw_output = '{"nftables": [{"chain": {}}]}'
    with pytest.raises(NetworkError, match="nft printed unexpected JSON"):
        fw.owners("br")
    nft.raw_output = "not json"
    with pytest.raises(NetworkError, match="nft printed unexpected JSON"):
        fw.owners("br")


@pytest.mark.parametrize(
    "error", [FileNotFoundError(2, "No such file"), subprocess.TimeoutExpired("nft", 30)]
)
def test_nft_that_cannot_run(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    from ocirt.network import nftables

    def run(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(nftables.subprocess, "run", run)
    with pytest.raises(NetworkError, match="nft could not run"):
        NftablesFirewall().owners("br")


def test_the_binary_can_be_chosen(nft: FakeNft, monkeypatch: pytest.MonkeyPatch) -> None:
    from ocirt.network import nftables

    argv: list[list[str]] = []

    def run(args: list[str], **kwargs: Any) -> Any:
        argv.append(args)
        return nft.run(args, **kwargs)

    monkeypatch.setattr(nftables.subprocess, "run", run)
    NftablesFirewall("/usr/sbin/nft").owners("br")
    assert argv[0][0] == "/usr/sbin/nft"
