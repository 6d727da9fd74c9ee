"""The firewall port, and the choice of its back end. Does I/O only in `detect`.

Two back ends carry out the same `ocirt.network.plan` rules: `iptables.py` (python-iptables,
legacy x_tables) and `nftables.py` (the `nft` tool, in `table ip ocirt`). Both pass one
contract suite. The back end follows what the host's own `iptables` speaks, so an admin sees
ocirt's rules with the tools they use (runtime-net-logs §4.3: python-iptables can only
write the legacy tables, which an nf_tables `iptables` does not list).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Protocol

from ocirt.errors import NetworkError
from ocirt.network.plan import FirewallPlan, Rule


class Backend(Enum):
    IPTABLES = "iptables"
    NFTABLES = "nftables"


class Firewall(Protocol):
    """Rules of ocirt's own chains, found again by their `ocirt:<bridge>:<owner>` comment."""

    backend: Backend

    def install(self, plan: FirewallPlan) -> None:
        """Create the bridge's chains and jumps and (re)place its base rules; idempotent.
        Rules of containers already in the chains are kept."""
        ...

    def add_rules(self, rules: Sequence[Rule]) -> None: ...

    def remove_owner(self, bridge: str, owner: str) -> None:
        """Delete every rule of this bridge tagged with `owner`."""
        ...

    def owners(self, bridge: str) -> set[str]: ...

    def listing(self, bridge: str) -> list[tuple[str, str]]:
        """(chain, comment) of every rule of this bridge, built-in chains included."""
        ...

    def uninstall(self, bridge: str) -> None:
        """Remove the bridge's jumps, rules and chains."""
        ...


def detect(
    ip_tables_names: Path = Path("/proc/net/ip_tables_names"),
) -> Backend:
    """nf_tables when the host's iptables is the nf_tables variant or legacy x_tables is
    missing; legacy when that is what the host's iptables uses."""
    version = ""
    if shutil.which("iptables"):
        try:
            version = subprocess.run(
                ["iptables", "-V"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            version = ""
    legacy_present = ip_tables_names.exists()
    if "(legacy)" in version and legacy_present:
        return Backend.IPTABLES
    if shutil.which("nft"):
        return Backend.NFTABLES
    if legacy_present:
        return Backend.IPTABLES
    raise NetworkError("neither nftables (nft) nor legacy iptables is available")


def make_firewall(backend: Backend | None = None) -> Firewall:
    chosen = backend if backend is not None else detect()
    if chosen is Backend.IPTABLES:
        from ocirt.network.iptables import IptablesFirewall

        return IptablesFirewall()
    from ocirt.network.nftables import NftablesFirewall

    return NftablesFirewall()
