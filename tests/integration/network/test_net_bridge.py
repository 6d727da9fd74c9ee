"""Bridge networking with real runc containers, real netns/veths/bridges and real rules,
on both firewall back ends. Assertions are made from inside containers where possible."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirt.config.model import PortMapping, PortProtocol
from ocirt.errors import NotFound
from ocirt.network.bridge import BridgeNetwork, make_firewall
from ocirt.network.netlink import Netlink
from ocirt.network.settings import BridgeOptions

from .net_helpers import (
    Container,
    Net,
    Remote,
    http_get,
    leftovers,
    random_port,
    server_args,
    udp_ask,
    unique_id,
)

pytestmark = pytest.mark.integration


def _attach(net: Net, tmp_path: Path, host_name: str, **kwargs: object):  # type: ignore[no-untyped-def]
    cid = unique_id()
    return net.network.attach(
        cid,
        host_name,
        kwargs.pop("domain_name", ""),  # type: ignore[arg-type]
        kwargs.pop("port_mappings", ()),  # type: ignore[arg-type]
        kwargs.pop("extra_hosts", ()),  # type: ignore[arg-type]
        tmp_path / cid,
    )


def test_published_ports_reach_the_container_from_everywhere(
    network: Net,
    tmp_path: Path,
    run_container: Callable[..., Container],
    remote_host: Remote,
) -> None:
    fixed, ranged = random_port(), random_port() + 3000
    # The first port of the range is taken by someone else: ONE other port of it is used.
    blocker = socket.socket()
    blocker.bind(("0.0.0.0", ranged))
    try:
        server = _attach(
            network,
            tmp_path,
            "server",
            port_mappings=(
                PortMapping(80, fixed, fixed, PortProtocol.TCP),
                PortMapping(81, fixed, fixed, PortProtocol.UDP),
                PortMapping(80, ranged, ranged + 3, PortProtocol.TCP),
            ),
        )
        tcp_fixed, udp_fixed, tcp_ranged = server.ports
        assert (tcp_fixed.host_port, udp_fixed.host_port) == (fixed, fixed)
        assert tcp_ranged.host_port == ranged + 1
        ctr = run_container(server, server_args("srv"), hostname="server")
        ctr.wait_listening(80)
        ctr.wait_listening(81, udp=True)

        # From a remote host, through the host's address on its link.
        assert http_get(remote_host.host_address, fixed, remote_host.netns) == "srv"
        assert http_get(remote_host.host_address, ranged + 1, remote_host.netns) == "srv"
        assert udp_ask(remote_host.host_address, fixed, "hi", remote_host.netns) == "srv:hi"
        # From the host itself, over loopback.
        assert http_get("127.0.0.1", fixed) == "srv"
        assert udp_ask("127.0.0.1", fixed, "lo") == "srv:lo"

        # From another container, through a host address (hairpin).
        client = run_container(
            _attach(network, tmp_path, "client"), ["sleep", "600"], hostname="client"
        )
        for address in (remote_host.host_address, str(network.network.settings.bridge_ip)):
            got = client.exec("wget", "-q", "-O", "-", f"http://{address}:{fixed}/")
            assert got.stdout.strip() == "srv", got.stderr
            got = client.exec("udptool", "send", address, str(fixed), "ctr")
            assert got.stdout.strip() == "srv:ctr", got.stderr
        # And the server reaching itself through its own published port.
        got = ctr.exec("wget", "-q", "-O", "-", f"http://{remote_host.host_address}:{fixed}/")
        assert got.stdout.strip() == "srv", got.stderr
    finally:
        blocker.close()


def test_a_published_port_cannot_be_taken_twice(network: Net, tmp_path: Path) -> None:
    port = random_port()
    _attach(network, tmp_path, "a", port_mappings=(PortMapping(80, port, port),))
    with pytest.raises(Exception, match="already allocated"):
        _attach(network, tmp_path, "b", port_mappings=(PortMapping(80, port, port),))
    # The failed attach left nothing behind but the first container's parts.
    assert len(leftovers(network)["veths"]) == 1  # type: ignore[arg-type]
    assert len(leftovers(network)["leases"]) == 1  # type: ignore[arg-type]


def test_extra_hosts_resolve_inside_the_container(
    network: Net, tmp_path: Path, run_container: Callable[..., Container]
) -> None:
    lo_ip = "127.0.0.1"
    viewer = _attach(
        network,
        tmp_path,
        "viewer",
        domain_name="example.test",
        extra_hosts=(
            "gw:host_ip",
            "loop:host_ip_lo",
            "peer:container_alpha",
            "lit:10.1.2.3",
        ),
    )
    ctr = run_container(viewer, ["sleep", "600"], hostname="viewer")
    hosts = ctr.exec("cat", "/etc/hosts").stdout
    assert f"{network.network.settings.bridge_ip}\tgw" in hosts
    assert f"{lo_ip}\tloop" in hosts
    assert "10.1.2.3\tlit" in hosts
    assert f"{viewer.ip}\tviewer.example.test viewer" in hosts
    assert "\tpeer" not in hosts  # no container "alpha" yet: skipped, as Kanto does

    alpha = _attach(network, tmp_path, "alpha")
    # The running container's bind-mounted file was refreshed in place.
    hosts = ctr.exec("cat", "/etc/hosts").stdout
    assert f"{alpha.ip}\tpeer" in hosts
    assert ctr.exec("hostname").stdout.strip() == "viewer"

    network.network.detach(alpha.container_id)
    assert "\tpeer" not in ctr.exec("cat", "/etc/hosts").stdout


def test_containers_talk_to_each_other(
    network: Net, tmp_path: Path, run_container: Callable[..., Container]
) -> None:
    server = _attach(network, tmp_path, "server")
    srv = run_container(server, server_args("icc"), hostname="server")
    srv.wait_listening(80)
    client = run_container(_attach(network, tmp_path, "client"), ["sleep", "600"])
    got = client.exec("wget", "-q", "-O", "-", f"http://{server.ip}/")
    assert got.stdout.strip() == "icc"
    # The container also reaches its gateway, and its resolv.conf has no loopback server.
    assert "127." not in client.exec("cat", "/etc/resolv.conf").stdout


def test_icc_false_blocks_containers_but_not_published_ports(
    make_network: Callable[..., Net],
    tmp_path: Path,
    run_container: Callable[..., Container],
) -> None:
    net = make_network(icc=False)
    port = random_port()
    server = _attach(net, tmp_path, "server", port_mappings=(PortMapping(80, port, port),))
    srv = run_container(server, server_args("iso"), hostname="server")
    srv.wait_listening(80)
    client = run_container(_attach(net, tmp_path, "client"), ["sleep", "600"])
    blocked = client.exec("wget", "-q", "-T", "1", "-O", "-", f"http://{server.ip}/")
    assert blocked.returncode != 0
    assert blocked.stdout.strip() == ""
    bridge_ip = net.network.settings.bridge_ip
    published = client.exec("wget", "-q", "-O", "-", f"http://{bridge_ip}:{port}/")
    assert published.stdout.strip() == "iso"


def test_host_mode_sees_the_host_interfaces(
    network: Net, tmp_path: Path, run_container: Callable[..., Container]
) -> None:
    cid = unique_id()
    attachment = network.network.attach_host(cid, ("lit:10.9.8.7",), tmp_path / cid)
    assert attachment.netns_path is None
    ctr = run_container(attachment, ["sleep", "600"], hostname="hostmode")
    links = ctr.exec("ip", "-o", "link").stdout
    assert network.name in links
    assert "10.9.8.7\tlit" in ctr.exec("cat", "/etc/hosts").stdout


def test_detach_leaves_nothing(network: Net, tmp_path: Path) -> None:
    port = random_port()
    first = _attach(network, tmp_path, "a", port_mappings=(PortMapping(80, port, port),))
    second = _attach(network, tmp_path, "b")
    assert leftovers(network)["owners"] == {first.container_id}
    network.network.detach(first.container_id)
    network.network.detach(second.container_id)
    assert leftovers(network) == {"owners": set(), "veths": [], "netns": [], "leases": {}}
    # The host port is free again.
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", port))


def test_reconcile_after_a_crash_leaves_nothing(network: Net, tmp_path: Path) -> None:
    port = random_port()
    kept = _attach(network, tmp_path, "kept", port_mappings=(PortMapping(80, port, port),))
    gone = _attach(network, tmp_path, "gone", port_mappings=(PortMapping(81, port + 1, port + 1),))
    # A crash: the process's objects vanish without any detach (its sockets die with it).
    network.network.close()

    fresh = BridgeNetwork(
        BridgeOptions(name=network.name, ip4=f"{network.subnet.network_address + 1}/24"),
        network.state_dir,
        network.backend,
    )
    network.network = fresh
    fresh.setup()
    fresh.reconcile({kept.container_id})
    left = leftovers(network)
    assert left["owners"] == {kept.container_id}
    assert left["leases"] == {kept.container_id: str(kept.ip)}
    assert len(left["netns"]) == 1  # type: ignore[arg-type]
    # The kept container's port was reserved again, the other one's released.
    with pytest.raises(OSError), socket.socket() as sock:
        sock.bind(("0.0.0.0", port))
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", port + 1))
    with pytest.raises(NotFound):
        fresh.attachment(gone.container_id)
    assert fresh.attachment(kept.container_id).ip == kept.ip

    fresh.reconcile(set())
    assert leftovers(network) == {"owners": set(), "veths": [], "netns": [], "leases": {}}


def test_bridge_is_reused_when_it_matches_and_recreated_otherwise(
    network: Net, tmp_path: Path
) -> None:
    nl = Netlink()
    try:
        before = nl.link_names(network.name)
        index = _index(network.name)
        again = BridgeNetwork(
            BridgeOptions(name=network.name, ip4=f"{network.subnet.network_address + 1}/24"),
            network.state_dir,
            network.backend,
        )
        again.setup()
        assert _index(network.name) == index
        changed = BridgeNetwork(
            BridgeOptions(
                name=network.name, mtu=1400, ip4=f"{network.subnet.network_address + 1}/24"
            ),
            network.state_dir,
            network.backend,
        )
        changed.setup()
        network.network = changed
        assert _index(network.name) != index
        assert before == [network.name]
        mtu = Path(f"/sys/class/net/{network.name}/mtu").read_text().strip()
        assert mtu == "1400"
    finally:
        nl.close()


def _index(name: str) -> int:
    return int(Path(f"/sys/class/net/{name}/ifindex").read_text())


def test_teardown_removes_rules_and_bridge(network: Net) -> None:
    network.network.teardown()
    assert make_firewall(network.backend).listing(network.name) == []
    assert not Path(f"/sys/class/net/{network.name}").exists()


@pytest.mark.parametrize("garbled", ["endpoints", "leases", "both", "endpoints-empty"])
def test_a_garbled_state_file_does_not_stop_bridge_networking(
    network: Net,
    tmp_path: Path,
    run_container: Callable[..., Container],
    garbled: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A power cut garbles endpoints.json or leases.json: the next daemon start rebuilds
    the leases from the containers' netns and the bridge, the next attach works, and no
    address in use is handed out again."""
    server = _attach(network, tmp_path, "server")
    srv = run_container(server, server_args("still-here"), hostname="server")
    srv.wait_listening(80)
    other = _attach(network, tmp_path, "other")
    for name in {"endpoints": ["endpoints"], "leases": ["leases"]}.get(
        garbled.removesuffix("-empty"), ["endpoints", "leases"]
    ):
        path = network.state_dir / f"{name}.json"
        if garbled.endswith("-empty"):
            path.write_bytes(b"")  # what an unsynced write can leave after a power cut
        else:
            path.write_bytes(path.read_bytes()[:25] + b"\0\0\0")  # cut short by a power cut
    network.network.close()

    fresh = BridgeNetwork(
        BridgeOptions(name=network.name, ip4=f"{network.subnet.network_address + 1}/24"),
        network.state_dir,
        network.backend,
    )
    network.network = fresh
    with caplog.at_level(logging.WARNING, logger="ocirt.network.bridge"):
        fresh.setup()
    assert f"network state of bridge {network.name} rebuilt" in caplog.text
    fresh.reconcile({server.container_id, other.container_id})
    assert leftovers(network)["leases"] == {
        server.container_id: str(server.ip),
        other.container_id: str(other.ip),
    }
    json.loads((network.state_dir / "endpoints.json").read_text())  # repaired

    client = run_container(_attach(network, tmp_path, "client"), ["sleep", "600"])
    assert client.attachment.ip not in (server.ip, other.ip)
    # From inside: the server still answers on its address, the client has its own.
    got = client.exec("wget", "-q", "-O", "-", f"http://{server.ip}/")
    assert got.stdout.strip() == "still-here"
    own = client.exec("ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert f" {client.attachment.ip}/" in own
    fresh.detach(server.container_id)
    fresh.detach(other.container_id)
    fresh.detach(client.attachment.container_id)
    assert leftovers(network)["netns"] == []
