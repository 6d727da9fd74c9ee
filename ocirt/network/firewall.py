"""The firewall port. Pure: a `Protocol` and the names of its back ends, no I/O.

Two back ends carry out the same `ocirt.network.plan` rules: `iptables.py` (python-iptables,
legacy x_tables) and `nftables.py` (the `nft` tool, in `table ip ocirt`). Both pass one
contract suite. Which one runs is chosen in `bridge.py` (`detect_backend`): it follows what
the host's own `iptables` speaks, so an admin sees ocirt's rules with the tools they use
(docs/runtime-notes.md §4.3: python-iptables can only write the legacy tables, which an
nf_tables `iptables` does not list). This module imports neither back end, so they can
import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Protocol

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
