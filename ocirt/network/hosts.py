"""Contents of a container's /etc/hosts, /etc/resolv.conf and /etc/hostname. Pure.

extraHosts follow Kanto (docs/kanto-compatibility.md §4): `name:value` with exactly one `:`; the
value `host_ip` is the bridge's address, `host_ip_<iface>` the first IPv4 address of that host
interface, `container_<hostName>` the address of the one bridge container with that host
name; anything else is taken as a literal address. A value that cannot be resolved is
reported and skipped, as Kanto logs and skips it.

resolv.conf follows Docker (docs/runtime-notes.md §5) with one deliberate difference: when no
usable nameserver is left, none is written, where Docker falls back to 8.8.8.8.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from ocirt.errors import InvalidArgument

HOST_IP = "host_ip"
HOST_IP_PREFIX = "host_ip_"
CONTAINER_PREFIX = "container_"
SYSTEMD_STUB = "127.0.0.53"

_BASE_HOSTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)


@dataclass(frozen=True, slots=True)
class ExtraHost:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What extraHosts resolve against, read by the caller."""

    bridge_ip: IPv4Address | None
    # Interface name -> its IPv4 addresses, in the kernel's order.
    interfaces: Mapping[str, Sequence[IPv4Address]]
    # Host name -> addresses of the bridge containers that use it.
    containers: Mapping[str, Sequence[IPv4Address]]


@dataclass(frozen=True, slots=True)
class Resolved:
    entries: tuple[tuple[str, str], ...]
    problems: tuple[str, ...]


def parse_extra_hosts(extra_hosts: Sequence[str]) -> tuple[ExtraHost, ...]:
    parsed = []
    for entry in extra_hosts:
        parts = entry.split(":")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InvalidArgument(f"host [{entry}] is incorrectly defined")
        parsed.append(ExtraHost(parts[0], parts[1]))
    return tuple(parsed)


def _resolve_one(value: str, facts: HostFacts) -> str:
    if value == HOST_IP:
        if facts.bridge_ip is None:
            raise LookupError("host_ip is only known in bridge mode")
        return str(facts.bridge_ip)
    if value.startswith(HOST_IP_PREFIX):
        iface = value[len(HOST_IP_PREFIX) :]
        addresses = facts.interfaces.get(iface)
        if not addresses:
            raise LookupError(f"no IPv4 address on host interface {iface}")
        return str(addresses[0])
    if value.startswith(CONTAINER_PREFIX):
        host_name = value[len(CONTAINER_PREFIX) :]
        matches = facts.containers.get(host_name, ())
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} bridge containers have the host name {host_name}")
        return str(matches[0])
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise LookupError(f"{value!r} is not an IP address") from exc


def resolve_extra_hosts(extra_hosts: Sequence[ExtraHost], facts: HostFacts) -> Resolved:
    entries: list[tuple[str, str]] = []
    problems: list[str] = []
    for host in extra_hosts:
        try:
            entries.append((_resolve_one(host.value, facts), host.name))
        except LookupError as exc:
            problems.append(f"extra host {host.name}:{host.value} skipped: {exc}")
    return Resolved(tuple(entries), tuple(problems))


def fqdn(host_name: str, domain_name: str) -> str:
    return f"{host_name}.{domain_name}" if domain_name else host_name


def render_hosts(
    own_ip: IPv4Address | None,
    host_name: str,
    domain_name: str,
    extra: Sequence[tuple[str, str]],
    base: str | None = None,
) -> str:
    """A hosts file: the base (Docker's lines, or the host's file in host mode), extra
    hosts, then the container's own address with `hostname[.domain] hostname`."""
    if base is None:
        lines = [f"{ip}\t{names}" for ip, names in _BASE_HOSTS]
    else:
        lines = base.rstrip("\n").split("\n") if base.strip() else []
    lines += [f"{ip}\t{name}" for ip, name in extra]
    if own_ip is not None and host_name:
        full = fqdn(host_name, domain_name)
        names = f"{full} {host_name}" if full != host_name else host_name
        lines.append(f"{own_ip}\t{names}")
    return "\n".join(lines) + "\n"


def _nameservers(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            found.append(fields[1])
    return found


def pick_resolv_source(etc_text: str, systemd_text: str | None) -> str:
    """systemd-resolved's stub (127.0.0.53) is unreachable from a container: use the
    upstream file it keeps, when there is one."""
    if systemd_text is not None and _nameservers(etc_text) == [SYSTEMD_STUB]:
        return systemd_text
    return etc_text


def _usable_in_bridge(server: str) -> bool:
    try:
        address = ipaddress.ip_address(server.split("%")[0])
    except ValueError:
        return False
    # Containers on the bridge have no IPv6 and their own loopback.
    return address.version == 4 and not address.is_loopback


def render_resolv(source: str, bridge_mode: bool) -> str:
    """The container's resolv.conf. In bridge mode loopback and IPv6 nameservers are
    dropped; when none remains, none is written (no public resolver fallback)."""
    if not bridge_mode:
        return source if source.endswith("\n") or not source else source + "\n"
    kept = []
    for line in source.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver" and not _usable_in_bridge(fields[1]):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n" if kept else ""


def render_hostname(host_name: str) -> str:
    return host_name + "\n"
