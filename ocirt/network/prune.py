"""Removing a bridge network that a stopped daemon left behind: the bridge, and the
firewall rules and chains of it. Does I/O (netlink, nftables/iptables, the network's
endpoint file).

A daemon leaves its bridge and rules in place when it stops, as Docker and Kanto do:
containers outlive it (docs/kanto-compatibility.md decision 10) and the next start reuses them.
`prune_bridge` is the way to take them away for good. It refuses while any container is attached to
the bridge (an endpoint on record, or a container's netns or veth still there), since removing the
bridge would cut those containers off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ocirt.config.model import NetworkMode
from ocirt.errors import FailedPrecondition, NetworkError
from ocirt.network import netlink
from ocirt.network.bridge import ENDPOINTS_FILE, detect_backend, make_firewall
from ocirt.network.firewall import Backend
from ocirt.network.plan import netns_prefix, veth_prefix
from ocirt.network.statefile import read_json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PruneReport:
    bridge: str
    bridge_removed: bool
    # The firewall backends whose rules and chains of the bridge were removed.
    firewalls: tuple[Backend, ...]


def attached(name: str, state_dir: Path, nl: netlink.Netlink) -> list[str]:
    """What still uses bridge `name`: containers on record, then stray netns and veths."""
    users: list[str] = []
    raw = read_json(Path(state_dir) / ENDPOINTS_FILE) or {}
    if isinstance(raw, dict):
        for cid, endpoint in sorted(raw.items()):
            if isinstance(endpoint, dict) and endpoint.get("mode") == NetworkMode.BRIDGE.value:
                users.append(f"container {cid}")
    prefix = netns_prefix(name)
    for ns in netlink.list_netns(prefix):
        cid = ns[len(prefix) :]
        if f"container {cid}" not in users:
            users.append(f"network namespace {ns}")
    users += [f"veth {veth}" for veth in nl.link_names(veth_prefix(name)) if len(veth) == 15]
    return users


def prune_bridge(name: str, state_dir: Path) -> PruneReport:
    """Remove bridge `name` and its rules; FailedPrecondition while anything uses it."""
    nl = netlink.Netlink()
    try:
        users = attached(name, state_dir, nl)
        if users:
            raise FailedPrecondition(
                f"bridge {name} is in use by {', '.join(users)}: stop those containers first"
            )
        cleaned: list[Backend] = []
        try:
            primary: Backend | None = detect_backend()
        except NetworkError:
            primary = None  # no firewall tool at all: there can be no rules either
        for backend in (Backend.NFTABLES, Backend.IPTABLES):
            try:
                make_firewall(backend).uninstall(name)
            except Exception as exc:
                # The host's own backend must work; the other one may simply be absent.
                if backend is primary:
                    raise NetworkError(
                        f"cannot remove the {backend.value} rules of bridge {name}: {exc}"
                    ) from exc
                log.debug("no %s rules removed for %s: %s", backend.value, name, exc)
                continue
            cleaned.append(backend)
        removed = nl.exists(name)
        if removed:
            nl.delete_link(name)
        return PruneReport(name, removed, tuple(cleaned))
    finally:
        nl.close()
