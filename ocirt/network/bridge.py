"""The network facade the manager uses: one bridge, its containers, their files. Does I/O.

`BridgeNetwork` composes the pure plans with the appliers: `netlink.py` (links, netns),
a `Firewall` back end (chosen here by `detect_backend`/`make_firewall`, so that the port in
`firewall.py` stays a leaf), `ipam.py` (addresses), `sockets.py` (host ports) and `files.py`.
Endpoints are recorded in `<state_dir>/endpoints.json` (atomically), so a new process can
find, re-reserve or clean up what an earlier one made: `reconcile(known_ids)` removes every
rule, veth, netns, lease and record that belongs to no known container.

Call it from a worker thread, never from inside a running asyncio loop: netlink, firewall
and file calls block. Methods are serialised by one lock.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from collections.abc import Sequence, Set
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

from ocirt.config.ids import check_container_id
from ocirt.config.model import NetworkMode, PortMapping, PortProtocol
from ocirt.errors import InvalidArgument, NetworkError, NotFound
from ocirt.network import hosts, netlink
from ocirt.network.files import (
    EtcFiles,
    host_hostname,
    host_hosts,
    host_resolv_conf,
    rewrite_in_place,
    write_etc_files,
)
from ocirt.network.firewall import Backend, Firewall
from ocirt.network.ipam import Ipam
from ocirt.network.plan import (
    BASE_OWNER,
    PublishedPort,
    bridge_plan,
    endpoint_plan,
    firewall_plan,
    netns_name,
    netns_prefix,
    port_candidates,
    port_rules,
    veth_name,
    veth_prefix,
)
from ocirt.network.settings import BridgeOptions, BridgeSettings, resolve
from ocirt.network.sockets import PortReservations
from ocirt.network.statefile import read_json, write_json

log = logging.getLogger(__name__)

ENDPOINTS_FILE = "endpoints.json"


@dataclass(frozen=True, slots=True)
class Attachment:
    """What the spec builder needs: the netns to join (None = the host's) and the files
    to bind-mount at /etc/hosts, /etc/resolv.conf and /etc/hostname."""

    container_id: str
    mode: NetworkMode
    netns_path: Path | None
    ip: IPv4Address | None
    prefixlen: int | None
    gateway: IPv4Address | None
    ports: tuple[PublishedPort, ...]
    files: EtcFiles


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """The persisted record of one attached container."""

    mode: NetworkMode
    ip: IPv4Address | None
    host_name: str
    domain_name: str
    extra_hosts: tuple[str, ...]
    files_dir: Path
    ports: tuple[PublishedPort, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "ip": str(self.ip) if self.ip else None,
            "host_name": self.host_name,
            "domain_name": self.domain_name,
            "extra_hosts": list(self.extra_hosts),
            "files_dir": str(self.files_dir),
            "ports": [
                {
                    "proto": p.proto.value,
                    "host_ip": str(p.host_ip),
                    "host_port": p.host_port,
                    "container_port": p.container_port,
                }
                for p in self.ports
            ],
        }

    @staticmethod
    def from_json(raw: dict[str, Any]) -> _Endpoint:
        return _Endpoint(
            mode=NetworkMode(raw["mode"]),
            ip=IPv4Address(raw["ip"]) if raw.get("ip") else None,
            host_name=str(raw["host_name"]),
            domain_name=str(raw["domain_name"]),
            extra_hosts=tuple(str(h) for h in raw["extra_hosts"]),
            files_dir=Path(raw["files_dir"]),
            ports=tuple(
                PublishedPort(
                    PortProtocol(p["proto"]),
                    IPv4Address(p["host_ip"]),
                    int(p["host_port"]),
                    int(p["container_port"]),
                )
                for p in raw["ports"]
            ),
        )


def detect_backend(
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
    chosen = backend if backend is not None else detect_backend()
    if chosen is Backend.IPTABLES:
        from ocirt.network.iptables import IptablesFirewall

        return IptablesFirewall()
    from ocirt.network.nftables import NftablesFirewall

    return NftablesFirewall()


class BridgeNetwork:
    def __init__(
        self,
        options: BridgeOptions,
        state_dir: Path,
        firewall: Firewall | Backend | None = None,
    ) -> None:
        self._options = options
        self._state_dir = Path(state_dir)
        self._firewall_choice = firewall
        self._firewall: Firewall | None = None
        self._netlink = netlink.Netlink()
        self._ports = PortReservations()
        self._lock = threading.RLock()
        self._settings: BridgeSettings | None = None
        self._ipam: Ipam | None = None
        self._endpoints: dict[str, _Endpoint] = {}

    # -- set-up ------------------------------------------------------------------------

    @property
    def settings(self) -> BridgeSettings:
        if self._settings is None:
            raise NetworkError("the bridge network is not set up")
        return self._settings

    def _fw(self) -> Firewall | None:
        if not self.settings.ip_tables:
            return None
        if self._firewall is None:
            choice = self._firewall_choice
            self._firewall = (
                make_firewall(choice) if choice is None or isinstance(choice, Backend) else choice
            )
        return self._firewall

    def setup(self) -> BridgeSettings:
        """Decide the addresses, create or reuse the bridge, set sysctls and base rules."""
        with self._lock:
            settings = resolve(self._options, self._netlink.host_routes())
            plan = bridge_plan(settings)
            self._netlink.ensure_bridge(plan)
            netlink.apply_sysctls(plan.sysctls)
            self._settings = settings
            firewall = self._fw()
            if firewall is not None:
                firewall.install(
                    firewall_plan(
                        settings.name, settings.subnet, icc=settings.icc, ip_masq=settings.ip_masq
                    )
                )
            self._ipam = Ipam(
                self._state_dir,
                settings.pool,
                settings.subnet,
                reserved={settings.bridge_ip, settings.gateway},
            )
            self._endpoints, damage = self._load_endpoints()
            self._rebuild(settings, damage)
            return settings

    def _load_endpoints(self) -> tuple[dict[str, _Endpoint], str | None]:
        """The endpoint records that can be read, and what was wrong with the rest."""
        path = self._state_dir / ENDPOINTS_FILE
        try:
            raw = read_json(path)
        except NetworkError as exc:
            return {}, exc.message
        if raw is None:
            return {}, None
        if not isinstance(raw, dict):
            return {}, f"malformed endpoint state {path}: not an object"
        endpoints: dict[str, _Endpoint] = {}
        bad: list[str] = []
        for cid, item in raw.items():
            try:
                endpoints[str(cid)] = _Endpoint.from_json(item)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                bad.append(f"{cid}: {type(exc).__name__}: {exc}")
        if bad:
            return endpoints, f"malformed endpoint records in {path}: {'; '.join(bad)}"
        return endpoints, None

    def _rebuild(self, settings: BridgeSettings, endpoint_damage: str | None) -> None:
        """Rebuild the leases when a state file is damaged (or the lease file is gone while
        containers are attached), from what is really in use: the readable leases, the
        readable endpoint records, the address inside each container's netns (which wins)
        and the bridge's neighbours. A damaged file must not stop bridge networking, nor
        let an address in use be handed out again."""
        ipam = self._leases()
        prefix = netns_prefix(settings.name)
        names = netlink.list_netns(prefix)
        if ipam.damage is None and endpoint_damage is None and (ipam.existed or not names):
            return
        reasons = [d for d in (ipam.damage, endpoint_damage) if d] or [
            f"{ipam.path} is missing while containers are attached"
        ]
        merged: dict[str, IPv4Address] = {}

        def claim(cid: str, ip: IPv4Address) -> None:
            for other in [c for c, taken in merged.items() if taken == ip and c != cid]:
                del merged[other]
            merged[cid] = ip

        for cid, ip in ipam.leases().items():
            claim(cid, ip)
        for cid, ep in self._endpoints.items():
            if ep.mode is NetworkMode.BRIDGE and ep.ip is not None:
                claim(cid, ep.ip)
        from_netns = 0
        for name in names:
            try:
                found = [ip for ip in netlink.netns_addresses(name) if ip in settings.subnet]
            except NetworkError as exc:
                log.warning("network state: %s", exc.message)
                continue
            if found:
                claim(name[len(prefix) :], found[0])
                from_netns += 1
        neighbours = _neighbours(settings.name)
        kept = ipam.restore(merged, neighbours)
        if endpoint_damage is not None:
            self._save_endpoints()
        lost = sorted(set(kept) - set(self._endpoints))
        log.warning(
            "network state of bridge %s rebuilt (%s): %d lease(s) kept, %d read from "
            "containers' netns, %d neighbour address(es) on the bridge kept free; "
            "containers without an endpoint record (%s) get their ports and hosts entries "
            "back when they are attached again",
            settings.name,
            "; ".join(reasons),
            len(kept),
            from_netns,
            len(neighbours - set(kept.values())),
            ", ".join(lost) or "none",
        )

    def _save_endpoints(self) -> None:
        # Unsynced: a power cut makes every record stale anyway (statefile).
        write_json(
            self._state_dir / ENDPOINTS_FILE,
            {cid: ep.to_json() for cid, ep in sorted(self._endpoints.items())},
            synced=False,
        )

    def _leases(self) -> Ipam:
        if self._ipam is None:
            raise NetworkError("the bridge network is not set up")
        return self._ipam

    # -- attach / detach -------------------------------------------------------------------

    def attach(
        self,
        container_id: str,
        host_name: str,
        domain_name: str,
        port_mappings: Sequence[PortMapping],
        extra_hosts: Sequence[str],
        files_dir: Path,
    ) -> Attachment:
        """Give a container its own netns on the bridge, its ports and its /etc files.

        Idempotent: what an interrupted earlier attach left of this container is replaced.
        On failure everything made here is undone.
        """
        check_container_id(container_id)
        parsed_extra = hosts.parse_extra_hosts(extra_hosts)
        for mapping in port_mappings:
            if not 1 <= mapping.container_port <= 65535:
                raise InvalidArgument(f"container port out of range: {mapping.container_port}")
        with self._lock:
            settings = self.settings
            if self._has_leftovers(container_id):
                self._release_endpoint(container_id, keep_lease=True)
            address = self._leases().lease(container_id)
            ep_plan = endpoint_plan(
                settings.name,
                container_id,
                settings.mtu,
                IPv4Interface(f"{address}/{settings.subnet.prefixlen}"),
                settings.gateway,
            )
            try:
                published = self._reserve(container_id, port_mappings)
                netns_path = self._netlink.create_endpoint(ep_plan)
                firewall = self._fw()
                if firewall is not None and published:
                    firewall.add_rules(port_rules(settings.name, container_id, address, published))
                endpoint = _Endpoint(
                    NetworkMode.BRIDGE,
                    address,
                    host_name,
                    domain_name,
                    tuple(extra_hosts),
                    Path(files_dir),
                    published,
                )
                self._endpoints[container_id] = endpoint
                files = self._write_files(container_id, endpoint, parsed_extra)
                self._save_endpoints()
            except BaseException:
                self._release_endpoint(container_id, keep_lease=False)
                raise
            self._refresh_others(container_id)
            return Attachment(
                container_id,
                NetworkMode.BRIDGE,
                netns_path,
                address,
                settings.subnet.prefixlen,
                settings.gateway,
                published,
                files,
            )

    def attach_host(
        self, container_id: str, extra_hosts: Sequence[str], files_dir: Path
    ) -> Attachment:
        """Host mode: no netns (the spec keeps the host's); the files follow the host's."""
        check_container_id(container_id)
        parsed_extra = hosts.parse_extra_hosts(extra_hosts)
        with self._lock:
            if self._has_leftovers(container_id):
                self._release_endpoint(container_id, keep_lease=False)
            endpoint = _Endpoint(
                NetworkMode.HOST, None, host_hostname(), "", tuple(extra_hosts), Path(files_dir), ()
            )
            self._endpoints[container_id] = endpoint
            try:
                files = self._write_files(container_id, endpoint, parsed_extra)
                self._save_endpoints()
            except BaseException:
                self._endpoints.pop(container_id, None)
                raise
            return Attachment(container_id, NetworkMode.HOST, None, None, None, None, (), files)

    def detach(self, container_id: str) -> None:
        """Remove the container's rules, ports, veth, netns and lease. Files stay (they are
        in the container's own directory, removed with it)."""
        check_container_id(container_id)
        with self._lock:
            known = self._endpoints.get(container_id)
            self._release_endpoint(container_id, keep_lease=False)
            self._save_endpoints()
            if known is not None and known.mode is NetworkMode.BRIDGE:
                self._refresh_others(container_id)

    def _has_leftovers(self, container_id: str) -> bool:
        """Whether an earlier attach of this container left parts behind. Attach makes the
        netns before any rule and detach removes rules before the netns, so without a
        record or a netns there are no rules of it either."""
        name = self.settings.name
        return (
            container_id in self._endpoints
            or (netlink.NETNS_DIR / netns_name(name, container_id)).exists()
            or self._netlink.exists(veth_name(name, container_id))
        )

    def _release_endpoint(self, container_id: str, *, keep_lease: bool) -> None:
        settings = self.settings
        self._ports.release(container_id)
        firewall = self._fw()
        if firewall is not None:
            firewall.remove_owner(settings.name, container_id)
        self._netlink.remove_endpoint(
            netns_name(settings.name, container_id), veth_name(settings.name, container_id)
        )
        if not keep_lease:
            self._leases().release(container_id)
        self._endpoints.pop(container_id, None)

    def _reserve(
        self, container_id: str, port_mappings: Sequence[PortMapping]
    ) -> tuple[PublishedPort, ...]:
        published = []
        for mapping in port_mappings:
            try:
                host_ip = IPv4Address(mapping.host_ip or "0.0.0.0")
            except ValueError as exc:
                raise InvalidArgument(f"invalid host IP {mapping.host_ip!r}") from exc
            candidates = port_candidates(mapping.host_port, mapping.host_port_end)
            port = self._ports.reserve(container_id, mapping.proto, host_ip, candidates)
            published.append(PublishedPort(mapping.proto, host_ip, port, mapping.container_port))
        return tuple(published)

    # -- files ----------------------------------------------------------------------------

    def _facts(self, extra_hosts: Sequence[str]) -> hosts.HostFacts:
        by_name: dict[str, list[IPv4Address]] = {}
        for ep in self._endpoints.values():
            if ep.mode is NetworkMode.BRIDGE and ep.ip is not None and ep.host_name:
                by_name.setdefault(ep.host_name, []).append(ep.ip)
        return hosts.HostFacts(
            bridge_ip=self.settings.bridge_ip if self._settings else None,
            # A netlink dump costs milliseconds: only when some entry names an interface.
            interfaces=self._netlink.interface_addresses()
            if any(hosts.HOST_IP_PREFIX in entry for entry in extra_hosts)
            else {},
            containers=by_name,
        )

    def _hosts_text(
        self, endpoint: _Endpoint, extra: Sequence[hosts.ExtraHost], facts: hosts.HostFacts
    ) -> str:
        if endpoint.mode is NetworkMode.HOST:
            # Kanto: host mode sees the host's hosts file; extra hosts are added to it.
            facts = hosts.HostFacts(None, facts.interfaces, {})
        resolved = hosts.resolve_extra_hosts(extra, facts)
        for problem in resolved.problems:
            log.warning("%s", problem)
        if endpoint.mode is NetworkMode.HOST:
            return hosts.render_hosts(None, "", "", resolved.entries, base=host_hosts())
        return hosts.render_hosts(
            endpoint.ip, endpoint.host_name, endpoint.domain_name, resolved.entries
        )

    def _write_files(
        self, container_id: str, endpoint: _Endpoint, extra: Sequence[hosts.ExtraHost]
    ) -> EtcFiles:
        hosts_text = self._hosts_text(endpoint, extra, self._facts(endpoint.extra_hosts))
        bridge_mode = endpoint.mode is NetworkMode.BRIDGE
        resolv = hosts.render_resolv(host_resolv_conf(), bridge_mode=bridge_mode)
        if bridge_mode and "nameserver" not in resolv:
            log.warning(
                "container %s gets no nameserver: the host has none reachable from the bridge",
                container_id,
            )
        return write_etc_files(
            endpoint.files_dir, hosts_text, resolv, hosts.render_hostname(endpoint.host_name)
        )

    def _refresh_others(self, except_id: str | None) -> None:
        if (
            not any(
                hosts.CONTAINER_PREFIX in h
                for ep in self._endpoints.values()
                for h in ep.extra_hosts
            )
            and except_id is not None
        ):
            return
        facts = self._facts([h for ep in self._endpoints.values() for h in ep.extra_hosts])
        for cid, ep in self._endpoints.items():
            if cid == except_id:
                continue
            path = ep.files_dir / "hosts"
            if not path.exists():
                continue
            text = self._hosts_text(ep, hosts.parse_extra_hosts(ep.extra_hosts), facts)
            rewrite_in_place(path, text)

    # -- recovery ------------------------------------------------------------------------

    def reconcile(self, known_ids: Set[str]) -> None:
        """Remove what belongs to no known container; re-reserve the ports of the others
        (reservations die with the process that held them)."""
        with self._lock:
            settings = self.settings
            known = set(known_ids)
            stale = set(self._endpoints) - known
            for cid in stale:
                self._release_endpoint(cid, keep_lease=False)
            firewall = self._fw()
            if firewall is not None:
                for owner in firewall.owners(settings.name) - known - {BASE_OWNER}:
                    firewall.remove_owner(settings.name, owner)
            expected_ns = {netns_name(settings.name, cid) for cid in known if _plain(cid)}
            for name in netlink.list_netns(netns_prefix(settings.name)):
                if name not in expected_ns:
                    netlink.remove_netns(name)
            expected_veth = {veth_name(settings.name, cid) for cid in known}
            for name in self._netlink.link_names(veth_prefix(settings.name)):
                if len(name) == 15 and name not in expected_veth:
                    self._netlink.delete_link(name)
            self._leases().reconcile(known)
            if stale:
                # Unchanged records are not rewritten: this runs at every daemon start.
                self._save_endpoints()
            for cid, ep in self._endpoints.items():
                if ep.mode is not NetworkMode.BRIDGE or cid in self._ports.owners():
                    continue
                for port in ep.ports:
                    try:
                        self._ports.reserve(
                            cid, port.proto, port.host_ip, range(port.host_port, port.host_port + 1)
                        )
                    except NetworkError as exc:
                        log.warning("container %s: cannot re-reserve a port: %s", cid, exc)
            self._refresh_others(None)

    def attachment(self, container_id: str) -> Attachment:
        """The attachment of a container attached earlier (possibly by another process)."""
        with self._lock:
            ep = self._endpoints.get(container_id)
            if ep is None:
                raise NotFound(f"container {container_id} is not attached to the network")
            files = EtcFiles(
                ep.files_dir / "hosts", ep.files_dir / "resolv.conf", ep.files_dir / "hostname"
            )
            if ep.mode is NetworkMode.HOST:
                return Attachment(container_id, ep.mode, None, None, None, None, (), files)
            return Attachment(
                container_id,
                ep.mode,
                netlink.NETNS_DIR / netns_name(self.settings.name, container_id),
                ep.ip,
                self.settings.subnet.prefixlen,
                self.settings.gateway,
                ep.ports,
                files,
            )

    def teardown(self) -> None:
        """Remove everything of this network: containers' parts, rules, chains, bridge."""
        with self._lock:
            self.reconcile(set())
            firewall = self._fw()
            if firewall is not None:
                firewall.uninstall(self.settings.name)
            self._netlink.delete_link(self.settings.name)
            self.close()

    def close(self) -> None:
        """Drop sockets and the netlink handle; the network itself stays up."""
        self._ports.close()
        self._netlink.close()


def _neighbours(bridge: str, arp: Path = Path("/proc/net/arp")) -> set[IPv4Address]:
    """The IPv4 neighbours the host knows on ``bridge`` (addresses something there used)."""
    try:
        lines = arp.read_text().splitlines()[1:]
    except OSError:
        return set()
    found = set()
    for line in lines:
        fields = line.split()
        # IP address, HW type, Flags, HW address, Mask, Device; flags 0x0: incomplete.
        if len(fields) >= 6 and fields[5] == bridge and fields[2] != "0x0":
            try:
                found.add(IPv4Address(fields[0]))
            except ValueError:
                continue
    return found


def _plain(container_id: str) -> bool:
    try:
        check_container_id(container_id)
    except InvalidArgument:
        return False
    return True
