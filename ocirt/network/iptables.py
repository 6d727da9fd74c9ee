"""Firewall back end on legacy x_tables, through python-iptables (iptc). Does I/O.

python-iptables loads libiptc and the xtables extensions with ctypes and writes the legacy
tables only (docs/runtime-notes.md §4.3). Each change is one commit of the whole table, taken
under `/run/xtables.lock` as `iptables -w` does, so it does not race the iptables tools.
Errors of iptc leave as `ocirt.errors.NetworkError`.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ocirt.errors import NetworkError
from ocirt.network.firewall import Backend
from ocirt.network.plan import FirewallPlan, Hook, Rule, Table, Verdict, chains_for, owner_of

XTABLES_LOCK = "/run/xtables.lock"
_BUILTIN = {
    Table.NAT: (Hook.PREROUTING, Hook.OUTPUT, Hook.POSTROUTING),
    Table.FILTER: (Hook.FORWARD,),
}


def _iface(name: str, negate: bool) -> str:
    return f"!{name}" if negate else name


class IptablesFirewall:
    backend = Backend.IPTABLES

    def __init__(self) -> None:
        try:
            import iptc
        except Exception as exc:  # ctypes raises a variety when libiptc is missing
            raise NetworkError(f"python-iptables cannot load libiptc: {exc}") from exc
        self._iptc: Any = iptc
        self._lock = threading.Lock()

    @contextmanager
    def _tables(self, *names: Table) -> Iterator[dict[Table, Any]]:
        """Fresh, non-autocommit tables, committed together at the end of the block."""
        iptc = self._iptc
        with self._lock:
            lock_fd = os.open(XTABLES_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                tables = {}
                try:
                    for name in names:
                        table = iptc.Table(name.value)
                        table.autocommit = False
                        table.refresh()
                        tables[name] = table
                    yield tables
                    for table in tables.values():
                        table.commit()
                except NetworkError:
                    raise
                except (iptc.IPTCError, iptc.xtables.XTablesError, OSError, ValueError) as exc:
                    raise NetworkError(f"iptables: {exc}") from exc
                finally:
                    for table in tables.values():
                        table.autocommit = True
            finally:
                os.close(lock_fd)

    def _rule(self, rule: Rule) -> Any:
        iptc = self._iptc
        r = iptc.Rule()
        if rule.proto is not None:
            r.protocol = rule.proto.value
        if rule.src is not None:
            r.src = str(rule.src)
        if rule.dst is not None:
            r.dst = str(rule.dst)
        if rule.in_iface is not None:
            r.in_interface = _iface(rule.in_iface.name, rule.in_iface.negate)
        if rule.out_iface is not None:
            r.out_interface = _iface(rule.out_iface.name, rule.out_iface.negate)
        if rule.dport is not None and rule.proto is not None:
            match = r.create_match(rule.proto.value)
            match.dport = str(rule.dport)
        if rule.dst_local:
            match = r.create_match("addrtype")
            match.dst_type = "LOCAL"
        if rule.ctstate:
            match = r.create_match("conntrack")
            match.ctstate = ",".join(rule.ctstate)
        match = r.create_match("comment")
        match.comment = rule.comment
        if rule.verdict is Verdict.JUMP:
            if rule.jump is None:
                raise NetworkError("a jump rule needs a target chain")
            r.create_target(rule.jump)
        elif rule.verdict is Verdict.DNAT:
            target = r.create_target("DNAT")
            target.to_destination = f"{rule.to_address}:{rule.to_port}"
        else:
            r.create_target(rule.verdict.value)
        return r

    def _put(self, tables: dict[Table, Any], rule: Rule) -> None:
        chain = self._iptc.Chain(tables[rule.table], rule.chain)
        if rule.builtin:
            # Jumps go first, so that rules appended by others do not shadow them.
            chain.insert_rule(self._rule(rule))
        else:
            chain.append_rule(self._rule(rule))

    def install(self, plan: FirewallPlan) -> None:
        with self._tables(Table.NAT, Table.FILTER) as tables:
            for table_name, table in tables.items():
                present = {chain.name for chain in table.chains}
                for name in plan.chains.of(table_name):
                    if name not in present:
                        table.create_chain(name)
            self._delete(tables, plan.bridge, {"base"})
            builtin = [r for r in plan.rules if r.builtin]
            for rule in [r for r in plan.rules if not r.builtin]:
                self._put(tables, rule)
            for rule in reversed(builtin):
                self._put(tables, rule)

    def add_rules(self, rules: Sequence[Rule]) -> None:
        if not rules:
            return
        with self._tables(*sorted({r.table for r in rules}, key=lambda t: t.value)) as tables:
            for rule in rules:
                self._put(tables, rule)

    def _matching(self, tables: dict[Table, Any], bridge: str) -> Iterator[tuple[Any, Any, str]]:
        ch = chains_for(bridge)
        for table_name, table in tables.items():
            ours = set(ch.of(table_name)) | {hook.value for hook in _BUILTIN[table_name]}
            for chain in table.chains:
                if chain.name not in ours:
                    continue
                for rule in chain.rules:
                    for match in rule.matches:
                        if match.name == "comment":
                            owner = owner_of(bridge, match.comment or "")
                            if owner is not None:
                                yield chain, rule, owner

    def _delete(self, tables: dict[Table, Any], bridge: str, owners: set[str] | None) -> None:
        doomed = [
            (chain, rule)
            for chain, rule, owner in self._matching(tables, bridge)
            if owners is None or owner in owners
        ]
        for chain, rule in doomed:
            chain.delete_rule(rule)

    def remove_owner(self, bridge: str, owner: str) -> None:
        with self._tables(Table.NAT, Table.FILTER) as tables:
            self._delete(tables, bridge, {owner})

    def owners(self, bridge: str) -> set[str]:
        with self._tables(Table.NAT, Table.FILTER) as tables:
            return {owner for _, _, owner in self._matching(tables, bridge)}

    def listing(self, bridge: str) -> list[tuple[str, str]]:
        with self._tables(Table.NAT, Table.FILTER) as tables:
            return [
                (chain.name, f"ocirt:{bridge}:{owner}")
                for chain, _, owner in self._matching(tables, bridge)
            ]

    def uninstall(self, bridge: str) -> None:
        ch = chains_for(bridge)
        with self._tables(Table.NAT, Table.FILTER) as tables:
            self._delete(tables, bridge, None)
            for table_name, table in tables.items():
                present = {chain.name: chain for chain in table.chains}
                for name in ch.of(table_name):
                    if name in present:
                        present[name].flush()
                        table.delete_chain(name)
