"""Bridge settings from Kanto's `network.default_bridge` keys, and the subnet choice. Pure.

Kanto parses `ip4`, `fcidr4` and `gwip4` and then ignores them; ocirt honours them
(docs/kanto-compatibility.md decision 7). When none is given the subnet is 172.29.0.0/16, or, when
that one is already routed on the host, the first free /16 of Docker's predefined private pools
(docs/kanto-compatibility.md §4; docs/runtime-notes.md §4.1). The caller reads the host's routes;
the choice itself is a function of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from ocirt.errors import InvalidArgument

DEFAULT_BRIDGE = "kanto-cm0"
DEFAULT_MTU = 1500
DEFAULT_SUBNET = IPv4Network("172.29.0.0/16")


def _predefined_pools() -> tuple[IPv4Network, ...]:
    # libnetwork's predefined local scope pools: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.
    wide = tuple(IPv4Network(f"172.{second}.0.0/16") for second in range(17, 32))
    narrow = tuple(IPv4Network("192.168.0.0/16").subnets(new_prefix=20))
    return (DEFAULT_SUBNET, *(pool for pool in wide if pool != DEFAULT_SUBNET), *narrow)


PREDEFINED_POOLS = _predefined_pools()

_KNOWN_KEYS = frozenset(
    {
        "name",
        "mtu",
        "icc",
        "ip_tables",
        "ip_forward",
        "ip_masq",
        "ip4",
        "fcidr4",
        "gwip4",
        "enable_ip6",
        "userland_proxy",
    }
)


@dataclass(frozen=True, slots=True)
class BridgeOptions:
    """The `default_bridge` keys as the user wrote them ("" = choose automatically)."""

    name: str = DEFAULT_BRIDGE
    mtu: int = DEFAULT_MTU
    icc: bool = True
    ip_tables: bool = True
    ip_forward: bool = True
    ip_masq: bool = True
    ip4: str = ""
    fcidr4: str = ""
    gwip4: str = ""


@dataclass(frozen=True, slots=True)
class HostRoute:
    """One IPv4 route of the host: its destination and the device it leaves by."""

    dst: IPv4Network
    dev: str


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    """What the network is built from: every address decided, nothing left automatic."""

    name: str
    mtu: int
    icc: bool
    ip_tables: bool
    ip_forward: bool
    ip_masq: bool
    bridge_address: IPv4Interface
    pool: IPv4Network
    gateway: IPv4Address

    @property
    def subnet(self) -> IPv4Network:
        return self.bridge_address.network

    @property
    def bridge_ip(self) -> IPv4Address:
        return self.bridge_address.ip


def options_from_kanto(raw: Mapping[str, object]) -> BridgeOptions:
    """Read `network.default_bridge` from Kanto's daemon config (docs/kanto-compatibility.md
    §10)."""
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise InvalidArgument(f"unknown network.default_bridge keys: {', '.join(unknown)}")
    defaults = BridgeOptions()

    def text(key: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            raise InvalidArgument(f"network.default_bridge.{key} must be a string")
        return value

    def flag(key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise InvalidArgument(f"network.default_bridge.{key} must be true or false")
        return value

    mtu = raw.get("mtu", defaults.mtu)
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not 68 <= mtu <= 65535:
        raise InvalidArgument("network.default_bridge.mtu must be an integer from 68 to 65535")
    if flag("enable_ip6", False):
        raise InvalidArgument("network.default_bridge.enable_ip6 is not supported")
    if flag("userland_proxy", False):
        raise InvalidArgument("network.default_bridge.userland_proxy is not supported")
    name = text("name", defaults.name) or defaults.name
    if len(name) > 15 or "/" in name or any(ch.isspace() for ch in name):
        raise InvalidArgument(f"invalid bridge name {name!r}")
    return BridgeOptions(
        name=name,
        mtu=mtu,
        icc=flag("icc", defaults.icc),
        ip_tables=flag("ip_tables", defaults.ip_tables),
        ip_forward=flag("ip_forward", defaults.ip_forward),
        ip_masq=flag("ip_masq", defaults.ip_masq),
        ip4=text("ip4", ""),
        fcidr4=text("fcidr4", ""),
        gwip4=text("gwip4", ""),
    )


def _invalid(key: str, value: str) -> InvalidArgument:
    return InvalidArgument(f"network.default_bridge.{key} is invalid: {value!r}")


def choose_subnet(routes: Iterable[HostRoute], bridge: str) -> IPv4Network:
    """The first predefined pool that overlaps no host route.

    Routes on our own bridge do not count, so a bridge left by a previous run keeps its
    subnet; the default route does not count either.
    """
    taken = [r.dst for r in routes if r.dev != bridge and r.dst.prefixlen > 0]
    for pool in PREDEFINED_POOLS:
        if not any(pool.overlaps(dst) for dst in taken):
            return pool
    raise InvalidArgument("no free private subnet for the bridge; set network.default_bridge.ip4")


def resolve(options: BridgeOptions, routes: Iterable[HostRoute]) -> BridgeSettings:
    """Decide the bridge address, container range and gateway.

    `ip4` (like Docker's --bip) fixes the subnet and the bridge's own address; without it
    the subnet is `fcidr4`'s, or an automatic one. `gwip4` defaults to the bridge address.
    """
    fixed: IPv4Network | None = None
    gateway: IPv4Address | None = None
    try:
        fixed = IPv4Network(options.fcidr4) if options.fcidr4 else None
    except ValueError as exc:
        raise _invalid("fcidr4", options.fcidr4) from exc
    try:
        gateway = IPv4Address(options.gwip4) if options.gwip4 else None
    except ValueError as exc:
        raise _invalid("gwip4", options.gwip4) from exc

    if options.ip4:
        if "/" not in options.ip4:
            raise InvalidArgument(
                f"network.default_bridge.ip4 needs a prefix length: {options.ip4!r}"
            )
        try:
            address = IPv4Interface(options.ip4)
        except ValueError as exc:
            raise _invalid("ip4", options.ip4) from exc
    else:
        subnet = fixed if fixed is not None else choose_subnet(routes, options.name)
        first = gateway if gateway is not None else next(subnet.hosts())
        address = IPv4Interface(f"{first}/{subnet.prefixlen}")

    subnet = address.network
    if subnet.prefixlen > 30:
        raise InvalidArgument(f"bridge subnet {subnet} is too small")
    if address.ip in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"bridge address {address} is not a host address")
    pool = fixed if fixed is not None else subnet
    if not pool.subnet_of(subnet):
        raise InvalidArgument(f"fcidr4 {pool} is not inside the bridge subnet {subnet}")
    gw = gateway if gateway is not None else address.ip
    if gw not in subnet or gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"gwip4 {gw} is not a host address of the bridge subnet {subnet}")
    return BridgeSettings(
        name=options.name,
        mtu=options.mtu,
        icc=options.icc,
        ip_tables=options.ip_tables,
        ip_forward=options.ip_forward,
        ip_masq=options.ip_masq,
        bridge_address=address,
        pool=pool,
        gateway=gw,
    )
