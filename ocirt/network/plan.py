"""Network plans: the links, sysctls and firewall rules a bridge and its endpoints need. Pure.

Plans are data; `netlink.py`, `sysctl` writes and the firewall back ends (`iptables.py`,
`nftables.py`) carry them out. The rules follow Docker's bridge driver in "hairpin" mode
(userland proxy off, as in Kanto; docs/runtime-notes.md §4.1), kept in chains of ocirt's own per
bridge so that they can be listed and removed as a whole:

    nat    PREROUTING  dst-type LOCAL -> OCIRT-DNAT-<br>      published ports (DNAT)
    nat    OUTPUT      dst-type LOCAL -> OCIRT-DNAT-<br>      the same, for the host itself
    nat    POSTROUTING                -> OCIRT-POST-<br>      masquerade: out, localhost, hairpin
    filter FORWARD                    -> OCIRT-FWD-<br>       established, published, out, icc

Every rule carries the comment `ocirt:<bridge>:<owner>`, the owner being a container id or
`base`, which is how per-container removal and reconcile find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from ocirt.config.ids import check_container_id
from ocirt.config.model import PortProtocol
from ocirt.errors import InvalidArgument
from ocirt.hashing import sha256_hex
from ocirt.network.settings import BridgeSettings
from ocirt.spec.layout import NETNS_DIR

BASE_OWNER = "base"
COMMENT_PREFIX = "ocirt"
LOOPBACK_NET = IPv4Network("127.0.0.0/8")
ANY_ADDRESS = IPv4Address("0.0.0.0")
CONTAINER_IFNAME = "eth0"


class Table(Enum):
    NAT = "nat"
    FILTER = "filter"


class Verdict(Enum):
    ACCEPT = "ACCEPT"
    DROP = "DROP"
    MASQUERADE = "MASQUERADE"
    DNAT = "DNAT"
    JUMP = "JUMP"


class Hook(Enum):
    """The built-in chains ocirt jumps from (iptables names; nft base chains of the same)."""

    PREROUTING = "PREROUTING"
    OUTPUT = "OUTPUT"
    POSTROUTING = "POSTROUTING"
    FORWARD = "FORWARD"


@dataclass(frozen=True, slots=True)
class Iface:
    """An interface match; `negate` means "any interface but this one"."""

    name: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One firewall rule, as neutral data. Unset fields do not match on anything."""

    table: Table
    chain: str
    verdict: Verdict
    comment: str
    proto: PortProtocol | None = None
    src: IPv4Network | None = None
    dst: IPv4Network | None = None
    in_iface: Iface | None = None
    out_iface: Iface | None = None
    dport: int | None = None
    dst_local: bool = False
    ctstate: tuple[str, ...] = ()
    to_address: IPv4Address | None = None
    to_port: int | None = None
    jump: str | None = None

    @property
    def builtin(self) -> bool:
        return self.chain in Hook.__members__


@dataclass(frozen=True, slots=True)
class Chains:
    """The chains of one bridge."""

    dnat: str
    post: str
    forward: str

    def of(self, table: Table) -> tuple[str, ...]:
        return (self.dnat, self.post) if table is Table.NAT else (self.forward,)


@dataclass(frozen=True, slots=True)
class FirewallPlan:
    bridge: str
    chains: Chains
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Sysctl:
    path: str
    value: str
    # Missing files are fine for optional ones (br_netfilter may not be loaded).
    optional: bool = False


@dataclass(frozen=True, slots=True)
class BridgePlan:
    name: str
    mtu: int
    address: IPv4Interface
    sysctls: tuple[Sysctl, ...]


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    container_id: str
    bridge: str
    netns_name: str
    host_veth: str
    mtu: int
    address: IPv4Interface
    gateway: IPv4Address


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """A port mapping after a host port was taken: one host port, one container port."""

    proto: PortProtocol
    host_ip: IPv4Address
    host_port: int
    container_port: int


def chains_for(bridge: str) -> Chains:
    # iptables chain names are at most 28 bytes; bridge names at most 15.
    return Chains(
        dnat=f"OCIRT-DNAT-{bridge}", post=f"OCIRT-POST-{bridge}", forward=f"OCIRT-FWD-{bridge}"
    )


def comment(bridge: str, owner: str) -> str:
    return f"{COMMENT_PREFIX}:{bridge}:{owner}"


def owner_of(bridge: str, text: str) -> str | None:
    """The owner named by a rule comment of this bridge, or None for anyone else's rule."""
    prefix = comment(bridge, "")
    return text[len(prefix) :] if text.startswith(prefix) and len(text) > len(prefix) else None


def _digest(text: str, length: int) -> str:
    return sha256_hex(text)[:length]


def veth_prefix(bridge: str) -> str:
    return "oc" + _digest(bridge, 4)


def veth_name(bridge: str, container_id: str) -> str:
    """The host end of a container's veth: 15 characters, found again from the id alone."""
    return veth_prefix(bridge) + _digest(container_id, 9)


def netns_prefix(bridge: str) -> str:
    return f"ocirt-{_digest(bridge, 8)}-"


def netns_name(bridge: str, container_id: str) -> str:
    return netns_prefix(bridge) + check_container_id(container_id)


def netns_path(bridge: str, container_id: str) -> str:
    """Where the container's network namespace is bind-mounted (`ip netns` style): the
    one name, in the spec at create's check, at start and in `ocirt spec`."""
    return f"{NETNS_DIR}/{netns_name(bridge, container_id)}"


def bridge_plan(settings: BridgeSettings) -> BridgePlan:
    sysctls = [
        # DNAT of 127.0.0.1 towards the bridge needs loopback sources to be routable there.
        Sysctl(f"/proc/sys/net/ipv4/conf/{settings.name}/route_localnet", "1"),
        # Bridged container-to-container traffic must see the FORWARD rules (icc, hairpin).
        Sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables", "1", optional=True),
    ]
    if settings.ip_forward:
        sysctls.insert(0, Sysctl("/proc/sys/net/ipv4/ip_forward", "1"))
    return BridgePlan(
        name=settings.name,
        mtu=settings.mtu,
        address=settings.bridge_address,
        sysctls=tuple(sysctls),
    )


def endpoint_plan(
    bridge: str, container_id: str, mtu: int, address: IPv4Interface, gateway: IPv4Address
) -> EndpointPlan:
    return EndpointPlan(
        container_id=check_container_id(container_id),
        bridge=bridge,
        netns_name=netns_name(bridge, container_id),
        host_veth=veth_name(bridge, container_id),
        mtu=mtu,
        address=address,
        gateway=gateway,
    )


def firewall_plan(bridge: str, subnet: IPv4Network, *, icc: bool, ip_masq: bool) -> FirewallPlan:
    """The chains, jumps and base rules of one bridge, in the order they must be appended."""
    ch = chains_for(bridge)
    base = comment(bridge, BASE_OWNER)
    on_br = Iface(bridge)
    off_br = Iface(bridge, negate=True)
    nat, flt = Table.NAT, Table.FILTER
    rules: list[Rule] = [
        Rule(nat, Hook.PREROUTING.value, Verdict.JUMP, base, dst_local=True, jump=ch.dnat),
        Rule(nat, Hook.OUTPUT.value, Verdict.JUMP, base, dst_local=True, jump=ch.dnat),
        Rule(nat, Hook.POSTROUTING.value, Verdict.JUMP, base, jump=ch.post),
        Rule(flt, Hook.FORWARD.value, Verdict.JUMP, base, jump=ch.forward),
    ]
    if ip_masq:
        rules.append(Rule(nat, ch.post, Verdict.MASQUERADE, base, src=subnet, out_iface=off_br))
    rules += [
        # 127.0.0.1:port -> container: the reply must come back to a routable source.
        Rule(nat, ch.post, Verdict.MASQUERADE, base, src=LOOPBACK_NET, out_iface=on_br),
        # Hairpin: a container reaching a published port (its own or another's) through a
        # host address; without this the reply would bypass the DNAT (CNI portmap's SETMARK).
        Rule(
            nat, ch.post, Verdict.MASQUERADE, base, src=subnet, out_iface=on_br, ctstate=("DNAT",)
        ),
        Rule(
            flt,
            ch.forward,
            Verdict.ACCEPT,
            base,
            out_iface=on_br,
            ctstate=("RELATED", "ESTABLISHED"),
        ),
        # Published ports are reachable from anywhere, other containers included (icc=false).
        Rule(flt, ch.forward, Verdict.ACCEPT, base, out_iface=on_br, ctstate=("DNAT",)),
        Rule(flt, ch.forward, Verdict.ACCEPT, base, in_iface=on_br, out_iface=off_br),
        Rule(
            flt,
            ch.forward,
            Verdict.ACCEPT if icc else Verdict.DROP,
            base,
            in_iface=on_br,
            out_iface=on_br,
        ),
        # Unsolicited traffic routed into the bridge; Docker gets this from FORWARD policy DROP.
        Rule(flt, ch.forward, Verdict.DROP, base, out_iface=on_br),
    ]
    return FirewallPlan(bridge=bridge, chains=ch, rules=tuple(rules))


def port_rules(
    bridge: str, container_id: str, address: IPv4Address, ports: tuple[PublishedPort, ...]
) -> tuple[Rule, ...]:
    """One DNAT per published port; the host address 0.0.0.0 means any local address."""
    ch = chains_for(bridge)
    tag = comment(bridge, check_container_id(container_id))
    return tuple(
        Rule(
            Table.NAT,
            ch.dnat,
            Verdict.DNAT,
            tag,
            proto=port.proto,
            dst=None if port.host_ip == ANY_ADDRESS else IPv4Network(port.host_ip),
            dport=port.host_port,
            to_address=address,
            to_port=port.container_port,
        )
        for port in ports
    )


def port_candidates(host_port: int, host_port_end: int) -> range:
    """The host ports a mapping may take: ONE of them is used (Docker's RequestPortInRange).

    Port 0 asks for any free port; Kanto fills host_port_end = host_port by default.
    """
    end = host_port_end if host_port_end else host_port
    if not 0 <= host_port <= 65535 or not 0 <= end <= 65535:
        raise InvalidArgument(f"host port out of range: {host_port}-{end}")
    if end < host_port:
        raise InvalidArgument(f"host port range end {end} is lower than its start {host_port}")
    return range(host_port, end + 1)
