"""Firewall back end on nf_tables, through the `nft` tool's JSON interface. Does I/O.

Everything lives in a table of ocirt's own, `table ip ocirt`: base chains named after the
iptables hooks they stand for (nat PREROUTING/OUTPUT/POSTROUTING, filter FORWARD) jump to
the per-bridge chains of `ocirt.network.plan`. Each change is one `nft -j -f -` batch, which
the kernel applies as one transaction. Failures leave as `ocirt.errors.NetworkError`.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

from ocirt.errors import NetworkError
from ocirt.network.firewall import Backend
from ocirt.network.plan import (
    BASE_OWNER,
    FirewallPlan,
    Hook,
    Rule,
    Verdict,
    chains_for,
    owner_of,
)

FAMILY = "ip"
TABLE = "ocirt"
# (hook, chain type, priority): dstnat -100, srcnat 100, filter 0.
_BASE_CHAINS = {
    Hook.PREROUTING: ("prerouting", "nat", -100),
    Hook.OUTPUT: ("output", "nat", -100),
    Hook.POSTROUTING: ("postrouting", "nat", 100),
    Hook.FORWARD: ("forward", "filter", 0),
}
# iptables' conntrack "states" DNAT/SNAT are nft's ct status bits.
_CT_STATUS = {"DNAT": "dnat", "SNAT": "snat"}


def _match(left: Any, right: Any, negate: bool = False, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": "!=" if negate else op, "left": left, "right": right}}


def _prefix(network: Any) -> Any:
    if network.prefixlen == 32:
        return str(network.network_address)
    return {"prefix": {"addr": str(network.network_address), "len": network.prefixlen}}


def expressions(rule: Rule) -> list[dict[str, Any]]:
    """The nft JSON expressions of a neutral rule."""
    expr: list[dict[str, Any]] = []
    if rule.in_iface is not None:
        expr.append(_match({"meta": {"key": "iifname"}}, rule.in_iface.name, rule.in_iface.negate))
    if rule.out_iface is not None:
        expr.append(
            _match({"meta": {"key": "oifname"}}, rule.out_iface.name, rule.out_iface.negate)
        )
    if rule.src is not None:
        expr.append(_match({"payload": {"protocol": "ip", "field": "saddr"}}, _prefix(rule.src)))
    if rule.dst is not None:
        expr.append(_match({"payload": {"protocol": "ip", "field": "daddr"}}, _prefix(rule.dst)))
    if rule.proto is not None:
        expr.append(_match({"meta": {"key": "l4proto"}}, rule.proto.value))
        if rule.dport is not None:
            expr.append(
                _match({"payload": {"protocol": rule.proto.value, "field": "dport"}}, rule.dport)
            )
    if rule.dst_local:
        expr.append(_match({"fib": {"result": "type", "flags": ["daddr"]}}, "local"))
    states = [s.lower() for s in rule.ctstate if s not in _CT_STATUS]
    statuses = [_CT_STATUS[s] for s in rule.ctstate if s in _CT_STATUS]
    if states:
        expr.append(_match({"ct": {"key": "state"}}, states, op="in"))
    if statuses:
        expr.append(_match({"ct": {"key": "status"}}, statuses, op="in"))
    if rule.verdict is Verdict.JUMP:
        expr.append({"jump": {"target": rule.jump}})
    elif rule.verdict is Verdict.DNAT:
        expr.append({"dnat": {"addr": str(rule.to_address), "port": rule.to_port}})
    elif rule.verdict is Verdict.MASQUERADE:
        expr.append({"masquerade": None})
    else:
        expr.append({rule.verdict.value.lower(): None})
    return expr


def _rule_command(verb: str, rule: Rule) -> dict[str, Any]:
    return {
        verb: {
            "rule": {
                "family": FAMILY,
                "table": TABLE,
                "chain": rule.chain,
                "expr": expressions(rule),
                "comment": rule.comment,
            }
        }
    }


class NftablesFirewall:
    backend = Backend.NFTABLES

    def __init__(self, binary: str = "nft") -> None:
        self._binary = binary
        self._lock = threading.Lock()

    def _run(self, args: list[str], payload: Any | None = None) -> str:
        try:
            proc = subprocess.run(
                [self._binary, *args],
                input=json.dumps(payload) if payload is not None else None,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetworkError(f"nft could not run: {exc}") from exc
        if proc.returncode != 0:
            raise NetworkError(f"nft failed: {proc.stderr.strip()}")
        return proc.stdout

    def _batch(self, commands: list[dict[str, Any]]) -> None:
        if commands:
            self._run(["-j", "-f", "-"], {"nftables": commands})

    def _table_exists(self) -> bool:
        try:
            self._run(["-j", "list", "table", FAMILY, TABLE])
        except NetworkError as exc:
            if "No such file or directory" in exc.message:
                return False
            raise
        return True

    def _list(self) -> tuple[set[str], list[dict[str, Any]]]:
        """The chain names and rules of our table; nothing when it does not exist yet."""
        try:
            out = self._run(["-j", "list", "table", FAMILY, TABLE])
        except NetworkError as exc:
            if "No such file or directory" in exc.message:
                return set(), []
            raise
        try:
            items = [item for item in json.loads(out)["nftables"] if isinstance(item, dict)]
            chains = {str(item["chain"]["name"]) for item in items if "chain" in item}
        except (ValueError, KeyError, TypeError) as exc:
            raise NetworkError(f"nft printed unexpected JSON: {exc}") from exc
        return chains, [item["rule"] for item in items if "rule" in item]

    def _owned(self, bridge: str) -> list[tuple[dict[str, Any], str]]:
        found = []
        for rule in self._list()[1]:
            owner = owner_of(bridge, str(rule.get("comment", "")))
            if owner is not None:
                found.append((rule, owner))
        return found

    @staticmethod
    def _delete_command(rule: dict[str, Any]) -> dict[str, Any]:
        return {
            "delete": {
                "rule": {
                    "family": FAMILY,
                    "table": TABLE,
                    "chain": rule["chain"],
                    "handle": rule["handle"],
                }
            }
        }

    def install(self, plan: FirewallPlan) -> None:
        with self._lock:
            commands: list[dict[str, Any]] = [{"add": {"table": {"family": FAMILY, "name": TABLE}}}]
            for hook, (nft_hook, kind, prio) in _BASE_CHAINS.items():
                chain = {
                    "family": FAMILY,
                    "table": TABLE,
                    "name": hook.value,
                    "type": kind,
                    "hook": nft_hook,
                    "prio": prio,
                    "policy": "accept",
                }
                commands.append({"add": {"chain": chain}})
            ch = plan.chains
            for name in (ch.dnat, ch.post, ch.forward):
                commands.append(
                    {"add": {"chain": {"family": FAMILY, "table": TABLE, "name": name}}}
                )
            commands += [
                self._delete_command(rule)
                for rule, owner in self._owned(plan.bridge)
                if owner == BASE_OWNER
            ]
            commands += [_rule_command("add", rule) for rule in plan.rules if not rule.builtin]
            commands += [_rule_command("add", rule) for rule in plan.rules if rule.builtin]
            self._batch(commands)

    def add_rules(self, rules: Sequence[Rule]) -> None:
        with self._lock:
            self._batch([_rule_command("add", rule) for rule in rules])

    def remove_owner(self, bridge: str, owner: str) -> None:
        with self._lock:
            self._batch([self._delete_command(r) for r, o in self._owned(bridge) if o == owner])

    def owners(self, bridge: str) -> set[str]:
        with self._lock:
            return {owner for _, owner in self._owned(bridge)}

    def listing(self, bridge: str) -> list[tuple[str, str]]:
        with self._lock:
            return [(rule["chain"], str(rule["comment"])) for rule, _ in self._owned(bridge)]

    def uninstall(self, bridge: str) -> None:
        ch = chains_for(bridge)
        with self._lock:
            commands = [self._delete_command(rule) for rule, _ in self._owned(bridge)]
            present, _ = self._list()
            for name in (ch.dnat, ch.post, ch.forward):
                if name in present:
                    chain = {"family": FAMILY, "table": TABLE, "name": name}
                    commands += [{"flush": {"chain": chain}}, {"delete": {"chain": chain}}]
            self._batch(commands)
            # The table goes too once no bridge uses it, so nothing of ocirt is left behind.
            present, rules = self._list()
            if present and not present - {hook.value for hook in Hook} and not rules:
                try:
                    self._batch([{"delete": {"table": {"family": FAMILY, "name": TABLE}}}])
                except NetworkError:
                    # Another ocirt (a second home on this host) may have removed it
                    # meanwhile: gone is what was wanted.
                    if self._table_exists():
                        raise
