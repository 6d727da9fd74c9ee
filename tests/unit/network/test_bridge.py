"""bridge.py: the network facade over a recording netlink and firewall (no root needed).

Host ports are really reserved, on 127.0.0.1 with port 0 (any free port); /etc files are
written under tmp_path. What the kernel would be asked to do is recorded by FakeNetlink.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ocirt.config.model import NetworkMode, PortMapping, PortProtocol
from ocirt.errors import InvalidArgument, NetworkError, NotFound
from ocirt.network import bridge, netlink
from ocirt.network.bridge import BridgeNetwork, _neighbours, detect_backend, make_firewall
from ocirt.network.firewall import Backend
from ocirt.network.plan import BridgePlan, EndpointPlan, netns_name, veth_name
from ocirt.network.settings import BridgeOptions, HostRoute
from tests.unit.network.conftest import FakeIptc, FakeNft, RecordingFirewall

NAME = "ocirt-ut0"


class FakeNetlink:
    """netlink.Netlink as BridgeNetwork uses it: every call recorded, links in a set."""

    instances: list[FakeNetlink] = []

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.links: set[str] = set()
        self.fail_create: Exception | None = None
        self.closed = False
        FakeNetlink.instances.append(self)

    def host_routes(self) -> list[HostRoute]:
        # 172.17.0.0/16 is taken by someone else: the bridge must choose another pool.
        return [HostRoute(IPv4Network("172.17.0.0/16"), "docker0")]

    def ensure_bridge(self, plan: BridgePlan) -> bool:
        self.calls.append(("ensure_bridge", plan))
        self.links.add(plan.name)
        return True

    def create_endpoint(self, plan: EndpointPlan) -> Path:
        self.calls.append(("create_endpoint", plan))
        if self.fail_create is not None:
            raise self.fail_create
        self.links.add(plan.host_veth)
        return netlink.NETNS_DIR / plan.netns_name

    def remove_endpoint(self, netns: str, veth: str) -> None:
        self.calls.append(("remove_endpoint", (netns, veth)))
        self.links.discard(veth)

    def exists(self, name: str) -> bool:
        return name in self.links

    def interface_addresses(self) -> dict[str, list[IPv4Address]]:
        self.calls.append(("interface_addresses", None))
        return {"eth9": [IPv4Address("192.0.2.9")]}

    def link_names(self, prefix: str) -> list[str]:
        return sorted(n for n in self.links if n.startswith(prefix))

    def delete_link(self, name: str) -> None:
        self.calls.append(("delete_link", name))
        self.links.discard(name)

    def close(self) -> None:
        self.closed = True

    def called(self, what: str) -> list[Any]:
        return [arg for name, arg in self.calls if name == what]


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """netlink's module functions recorded; NETNS_DIR in tmp_path."""
    FakeNetlink.instances = []
    seen: dict[str, Any] = {"sysctls": [], "removed_netns": []}
    monkeypatch.setattr(netlink, "Netlink", FakeNetlink)
    monkeypatch.setattr(netlink, "NETNS_DIR", tmp_path / "netns")
    monkeypatch.setattr(netlink, "apply_sysctls", seen["sysctls"].append)
    monkeypatch.setattr(netlink, "remove_netns", seen["removed_netns"].append)
    (tmp_path / "netns").mkdir()
    return seen


Make = Callable[..., BridgeNetwork]


@pytest.fixture
def make(host: dict[str, Any], tmp_path: Path, recording_firewall: RecordingFirewall) -> Make:
    networks: list[BridgeNetwork] = []

    def make(**options: Any) -> BridgeNetwork:
        net = BridgeNetwork(
            BridgeOptions(name=NAME, **options), tmp_path / "state", firewall=recording_firewall
        )
        networks.append(net)
        return net

    yield make
    for net in networks:
        net.close()


def kernel(net: BridgeNetwork) -> FakeNetlink:
    return net._netlink  # type: ignore[return-value]


def attach(net: BridgeNetwork, cid: str, tmp_path: Path, **kw: Any) -> bridge.Attachment:
    return net.attach(
        cid,
        kw.get("host_name", cid),
        kw.get("domain_name", ""),
        kw.get("ports", ()),
        kw.get("extra_hosts", ()),
        tmp_path / "files" / cid,
    )


def tcp_any(container_port: int = 80, host_ip: str = "127.0.0.1") -> PortMapping:
    return PortMapping(
        proto=PortProtocol.TCP,
        container_port=container_port,
        host_ip=host_ip,
        host_port=0,
        host_port_end=0,
    )


def test_settings_need_setup(make: Make) -> None:
    with pytest.raises(NetworkError, match="not set up"):
        make().settings  # noqa: B018


def test_setup_makes_the_bridge_sysctls_and_base_rules(
    make: Make, host: dict[str, Any], recording_firewall: RecordingFirewall
) -> None:
    net = make()
    settings = net.setup()
    assert settings.name == NAME
    assert not settings.subnet.overlaps(IPv4Network("172.17.0.0/16"))
    (plan,) = kernel(net).called("ensure_bridge")
    assert (plan.name, plan.address) == (NAME, settings.bridge_address)
    (sysctls,) = host["sysctls"]
    assert sysctls == plan.sysctls
    assert recording_firewall.calls == [("install", NAME)]
    assert recording_firewall.owners(NAME) == {"base"}


def test_without_ip_tables_no_firewall_is_touched(
    make: Make, recording_firewall: RecordingFirewall, tmp_path: Path
) -> None:
    net = make(ip_tables=False)
    net.setup()
    attach(net, "c1", tmp_path, ports=[tcp_any()])
    net.detach("c1")
    assert recording_firewall.calls == []


def test_attach_gives_a_netns_an_address_ports_and_files(
    make: Make, recording_firewall: RecordingFirewall, tmp_path: Path
) -> None:
    net = make()
    settings = net.setup()
    got = attach(net, "c1", tmp_path, host_name="web", domain_name="example", ports=[tcp_any()])
    assert got.mode is NetworkMode.BRIDGE
    assert got.netns_path == netlink.NETNS_DIR / netns_name(NAME, "c1")
    assert got.ip in settings.subnet and got.ip != settings.bridge_ip
    assert (got.prefixlen, got.gateway) == (settings.subnet.prefixlen, settings.gateway)
    (published,) = got.ports
    assert published.host_port > 0 and published.container_port == 80
    (endpoint,) = kernel(net).called("create_endpoint")
    assert (endpoint.netns_name, endpoint.host_veth) == (
        netns_name(NAME, "c1"),
        veth_name(NAME, "c1"),
    )
    ((_, rules),) = [c for c in recording_firewall.calls if c[0] == "add_rules"]
    (dnat,) = rules
    assert (dnat.to_address, dnat.to_port, dnat.dport) == (got.ip, 80, published.host_port)
    hosts = got.files.hosts.read_text()
    assert hosts.endswith(f"{got.ip}\tweb.example web\n")
    assert got.files.hostname.read_text().strip() == "web"
    record = json.loads((tmp_path / "state" / "endpoints.json").read_text())
    assert record["c1"]["ip"] == str(got.ip)
    assert record["c1"]["ports"][0]["host_port"] == published.host_port


def test_the_reserved_port_is_held(make: Make, tmp_path: Path) -> None:
    net = make()
    net.setup()
    got = attach(net, "c1", tmp_path, ports=[tcp_any()])
    taken = got.ports[0].host_port
    again = PortMapping(
        proto=PortProtocol.TCP, container_port=80, host_ip="127.0.0.1", host_port=taken,
        host_port_end=taken,
    )  # fmt: skip
    with pytest.raises(NetworkError, match="port is already allocated"):
        attach(net, "c2", tmp_path, ports=[again])
    net.detach("c1")
    attach(net, "c2", tmp_path, ports=[again])  # free again


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (tcp_any(container_port=0), "container port out of range"),
        (tcp_any(host_ip="not-an-ip"), "invalid host IP"),
    ],
)
def test_bad_port_mappings_are_refused_and_leave_nothing(
    make: Make, tmp_path: Path, mapping: PortMapping, message: str
) -> None:
    net = make()
    net.setup()
    with pytest.raises(InvalidArgument, match=message):
        attach(net, "c1", tmp_path, ports=[mapping])
    with pytest.raises(NotFound):
        net.attachment("c1")


def test_a_failed_attach_is_undone(
    make: Make, recording_firewall: RecordingFirewall, tmp_path: Path
) -> None:
    net = make()
    net.setup()
    kernel(net).fail_create = NetworkError("no veth for you")
    with pytest.raises(NetworkError, match="no veth for you"):
        attach(net, "c1", tmp_path, ports=[tcp_any()])
    assert kernel(net).called("remove_endpoint") == [
        (netns_name(NAME, "c1"), veth_name(NAME, "c1"))
    ]
    assert ("remove_owner", (NAME, "c1")) in recording_firewall.calls
    assert net._ports.owners() == set()
    leases = json.loads((tmp_path / "state" / "leases.json").read_text())["leases"]
    assert "c1" not in leases
    with pytest.raises(NotFound):
        net.attachment("c1")


def test_attach_again_replaces_the_leftovers_and_keeps_the_address(
    make: Make, tmp_path: Path
) -> None:
    net = make()
    net.setup()
    first = attach(net, "c1", tmp_path)
    second = attach(net, "c1", tmp_path)
    assert second.ip == first.ip
    assert kernel(net).called("remove_endpoint") == [
        (netns_name(NAME, "c1"), veth_name(NAME, "c1"))
    ]
    assert len(kernel(net).called("create_endpoint")) == 2


def test_detach_removes_rules_ports_links_and_lease(
    make: Make, recording_firewall: RecordingFirewall, tmp_path: Path
) -> None:
    net = make()
    net.setup()
    attach(net, "c1", tmp_path, ports=[tcp_any()])
    net.detach("c1")
    assert recording_firewall.owners(NAME) == {"base"}
    assert net._ports.owners() == set()
    assert not kernel(net).exists(veth_name(NAME, "c1"))
    assert json.loads((tmp_path / "state" / "endpoints.json").read_text()) == {}
    assert json.loads((tmp_path / "state" / "leases.json").read_text())["leases"] == {}
    with pytest.raises(InvalidArgument):
        net.detach("../escape")


def test_containers_find_each_other_by_host_name(make: Make, tmp_path: Path) -> None:
    net = make()
    net.setup()
    a = attach(net, "a", tmp_path, host_name="alpha", extra_hosts=["peer:container_beta"])
    # beta does not exist yet: the entry is skipped (with a warning), not an error.
    assert "peer" not in a.files.hosts.read_text()
    b = attach(net, "b", tmp_path, host_name="beta")
    # Attaching beta rewrote alpha's hosts file in place.
    assert f"{b.ip}\tpeer" in a.files.hosts.read_text()
    net.detach("b")
    assert "peer" not in a.files.hosts.read_text()


def test_host_interfaces_are_looked_up_only_when_named(make: Make, tmp_path: Path) -> None:
    net = make()
    net.setup()
    attach(net, "a", tmp_path)
    assert kernel(net).called("interface_addresses") == []
    got = attach(net, "b", tmp_path, extra_hosts=["gw:host_ip_eth9", "me:host_ip"])
    text = got.files.hosts.read_text()
    assert "192.0.2.9\tgw" in text
    assert f"{net.settings.bridge_ip}\tme" in text


def test_host_mode(make: Make, tmp_path: Path) -> None:
    net = make()
    net.setup()
    got = net.attach_host("h1", ["extra:10.1.2.3"], tmp_path / "files" / "h1")
    assert (got.mode, got.netns_path, got.ip, got.ports) == (NetworkMode.HOST, None, None, ())
    assert "10.1.2.3\textra" in got.files.hosts.read_text()
    assert kernel(net).called("create_endpoint") == []
    assert net.attachment("h1") == got
    net.detach("h1")
    with pytest.raises(NotFound):
        net.attachment("h1")


def test_attachment_of_a_bridge_container(make: Make, tmp_path: Path) -> None:
    net = make()
    net.setup()
    got = attach(net, "c1", tmp_path, ports=[tcp_any()])
    assert net.attachment("c1") == got
    with pytest.raises(NotFound):
        net.attachment("nobody")


def test_a_new_process_reconciles_with_what_it_finds(
    make: Make, recording_firewall: RecordingFirewall, host: dict[str, Any], tmp_path: Path
) -> None:
    old = make()
    old.setup()
    kept = attach(old, "keep", tmp_path, ports=[tcp_any()])
    attach(old, "drop", tmp_path)
    leftovers = kernel(old).links
    old.close()  # the process ends: its port reservations with it
    # Parts of containers nobody knows: a netns, a veth, a rule.
    (netlink.NETNS_DIR / netns_name(NAME, "ghost")).touch()
    (netlink.NETNS_DIR / netns_name(NAME, "keep")).touch()
    recording_firewall.add_rules(
        [r for r in recording_firewall.rules if r.comment.endswith(":keep")][:1]
    )
    new = make()
    kernel(new).links = set(leftovers) | {veth_name(NAME, "ghost")}
    new.setup()
    assert new.attachment("keep") == kept
    new.reconcile({"keep"})
    assert recording_firewall.owners(NAME) == {"base", "keep"}
    assert host["removed_netns"] == [netns_name(NAME, "ghost")]
    assert set(kernel(new).called("delete_link")) == {veth_name(NAME, "ghost")}
    assert ("remove_endpoint", (netns_name(NAME, "drop"), veth_name(NAME, "drop"))) in kernel(
        new
    ).calls
    with pytest.raises(NotFound):
        new.attachment("drop")
    # The port of "keep" is held again by the new process.
    assert new._ports.owners() == {"keep"}
    leases = json.loads((tmp_path / "state" / "leases.json").read_text())["leases"]
    assert leases == {"keep": str(kept.ip)}


def test_garbled_state_is_rebuilt_from_records_netns_and_bridge(
    make: Make,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = make()
    first.setup()
    kept = attach(first, "kept", tmp_path)
    running = attach(first, "running", tmp_path)
    first.close()
    state = tmp_path / "state"
    endpoints = json.loads((state / "endpoints.json").read_text())
    del endpoints["running"]["host_name"]  # one record damaged, the other readable
    (state / "endpoints.json").write_text(json.dumps(endpoints))
    (state / "leases.json").write_text('{"pool": "10.')  # cut short
    # The running container's netns is still there, with its address inside.
    prefix = bridge.netns_prefix(NAME)
    (netlink.NETNS_DIR / f"{prefix}running").touch()
    inside = {f"{prefix}running": [running.ip]}
    monkeypatch.setattr(netlink, "netns_addresses", lambda name: inside[name])
    neighbour = running.ip + 5
    arp = tmp_path / "arp"
    arp.write_text(
        "IP address HW type Flags HW address Mask Device\n"
        f"{neighbour} 0x1 0x2 aa:bb:cc:dd:ee:ff * {NAME}\n"
    )
    monkeypatch.setattr(bridge, "_neighbours", lambda name: bridge_neighbours(name, arp))

    again = make()
    with caplog.at_level(logging.WARNING, logger="ocirt.network.bridge"):
        again.setup()  # used to fail: every bridge attach answered 500 from then on
    assert "network state of bridge" in caplog.text and "rebuilt" in caplog.text
    assert "malformed endpoint records" in caplog.text and "leases.json" in caplog.text
    assert "without an endpoint record (running)" in caplog.text
    leases = json.loads((state / "leases.json").read_text())["leases"]
    assert leases == {"kept": str(kept.ip), "running": str(running.ip)}
    assert set(json.loads((state / "endpoints.json").read_text())) == {"kept"}
    fresh = {attach(again, f"new{i}", tmp_path).ip for i in range(6)}
    assert not fresh & {kept.ip, running.ip, neighbour}


def bridge_neighbours(name: str, arp: Path) -> set[IPv4Address]:
    return _neighbours(name, arp)


def test_neighbours_are_read_from_the_arp_table(tmp_path: Path) -> None:
    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.0.0.5         0x1         0x2         aa:bb:cc:dd:ee:01     *        br0\n"
        "10.0.0.6         0x1         0x0         00:00:00:00:00:00     *        br0\n"
        "10.0.0.7         0x1         0x2         aa:bb:cc:dd:ee:02     *        eth0\n"
    )
    assert _neighbours("br0", arp) == {IPv4Address("10.0.0.5")}
    assert _neighbours("br0", tmp_path / "missing") == set()


def test_teardown_removes_everything(
    make: Make, recording_firewall: RecordingFirewall, tmp_path: Path
) -> None:
    net = make()
    net.setup()
    attach(net, "c1", tmp_path, ports=[tcp_any()])
    net.teardown()
    assert recording_firewall.listing(NAME) == []
    assert recording_firewall.calls[-1] == ("uninstall", NAME)
    assert kernel(net).called("delete_link")[-1] == NAME
    assert kernel(net).closed


# -- choosing the firewall back end ---------------------------------------------------


@pytest.fixture
def host_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    tools: dict[str, Any] = {"which": set(), "version": "", "legacy": False}

    def which(name: str) -> str | None:
        return f"/usr/sbin/{name}" if name in tools["which"] else None

    def run(argv: list[str], **_: Any) -> Any:
        if isinstance(tools["version"], Exception):
            raise tools["version"]
        return subprocess.CompletedProcess(argv, 0, tools["version"], "")

    monkeypatch.setattr(bridge.shutil, "which", which)
    monkeypatch.setattr(bridge.subprocess, "run", run)
    return tools


def detect(tools: dict[str, Any], tmp_path: Path) -> Backend:
    names = tmp_path / "ip_tables_names"
    if tools["legacy"]:
        names.write_text("nat\nfilter\n")
    return detect_backend(names)


@pytest.mark.parametrize(
    ("which", "version", "legacy", "expected"),
    [
        ({"iptables", "nft"}, "iptables v1.8.9 (legacy)", True, Backend.IPTABLES),
        ({"iptables", "nft"}, "iptables v1.8.9 (nf_tables)", True, Backend.NFTABLES),
        # A legacy iptables whose tables are not loaded: nft, which can load its own.
        ({"iptables", "nft"}, "iptables v1.8.9 (legacy)", False, Backend.NFTABLES),
        (set(), "", True, Backend.IPTABLES),
        ({"iptables"}, OSError("exec format error"), True, Backend.IPTABLES),
        ({"iptables", "nft"}, subprocess.TimeoutExpired("iptables", 10), False, Backend.NFTABLES),
    ],
)
def test_detect_backend(
    host_tools: dict[str, Any],
    tmp_path: Path,
    which: set[str],
    version: Any,
    legacy: bool,
    expected: Backend,
) -> None:
    host_tools.update(which=which, version=version, legacy=legacy)
    assert detect(host_tools, tmp_path) is expected


def test_no_firewall_at_all_is_an_error(host_tools: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match="neither nftables"):
        detect(host_tools, tmp_path)


def test_make_firewall(iptc: FakeIptc, nft: FakeNft, host_tools: dict[str, Any]) -> None:
    assert make_firewall(Backend.IPTABLES).backend is Backend.IPTABLES
    assert make_firewall(Backend.NFTABLES).backend is Backend.NFTABLES
    host_tools["which"] = {"nft"}
    assert make_firewall().backend is Backend.NFTABLES


def test_the_network_makes_its_firewall_from_a_backend_name(
    host: dict[str, Any], nft: FakeNft, tmp_path: Path
) -> None:
    net = BridgeNetwork(BridgeOptions(name=NAME), tmp_path / "state", firewall=Backend.NFTABLES)
    try:
        net.setup()
    finally:
        net.close()
    assert nft.table is not None
    assert f"OCIRT-FWD-{NAME}" in nft.table


def test_endpoint_records_are_written_unsynced_and_leases_synced(
    make: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A power cut leaves no endpoint that a record could describe: an fsync of them
    # would sit on every start's way for nothing. The leases keep theirs.
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    net = make()
    net.setup()
    monkeypatch.setattr(os, "fsync", fsync)
    attach(net, "c1", tmp_path)
    net.attach_host("h1", [], tmp_path / "files" / "h1")
    assert [p for p in synced if "endpoints" in p] == []
    assert any("leases" in p for p in synced)
    assert {"c1", "h1"} <= set(json.loads((net._state_dir / "endpoints.json").read_text()))
