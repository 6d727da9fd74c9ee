"""The rtnetlink codec on replies recorded from a real kernel, with pyroute2 as the oracle.

data/*.hex were written by hack/record_netlink.py (one datagram per line) from a network
namespace it set up as data/LAYOUT.txt says; re-run it as root to re-record. Each datagram
is decoded by `ocirt.network.rtnetlink` and by pyroute2's marshal (a test-only dependency,
never imported by ocirt), and the fields ocirt reads must agree. Facts of the layout (names,
addresses, MTUs, the default route) are checked too, so that both decoders agreeing on
something wrong would still fail. Error replies are read against a plain struct unpack,
because pyroute2 cannot parse a capped NLMSG_ERROR echo of every request type.
"""

from __future__ import annotations

import errno
import struct
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from pyroute2.netlink.rtnl import marshal

from ocirt.network import rtnetlink as rt

DATA = Path(__file__).parent / "data"
HDR = struct.Struct("=IHHII")


def datagrams(name: str) -> list[bytes]:
    lines = (DATA / f"{name}.hex").read_text().split()
    assert lines, name
    return [bytes.fromhex(line) for line in lines]


def both(name: str) -> list[tuple[rt.Message, Any]]:
    """(ours, pyroute2's) for every message of every datagram, in order."""
    pairs = []
    for data in datagrams(name):
        ours = rt.decode(data)
        theirs = list(marshal.MarshalRtnl().parse(data))
        assert len(ours) == len(theirs)
        pairs += list(zip(ours, theirs, strict=True))
    return pairs


def headers_agree(ours: rt.Message, theirs: Any) -> None:
    assert ours.type == theirs["header"]["type"]
    assert ours.flags == theirs["header"]["flags"]
    assert ours.seq == theirs["header"]["sequence_number"]


def dump_bodies(name: str) -> list[tuple[Any, Any]]:
    """The bodies of a dump, with its NLMSG_DONE checked and left off."""
    pairs = both(name)
    for ours, theirs in pairs:
        headers_agree(ours, theirs)
    assert len({ours.seq for ours, _ in pairs}) == 1
    *bodies, (done, _) = pairs
    assert done.type == rt.NLMSG_DONE
    assert done.body == rt.Done(0)
    assert all(ours.flags & rt.NLM_F_MULTI for ours, _ in pairs)
    return [(ours.body, theirs) for ours, theirs in bodies]


def test_link_dump() -> None:
    links = {}
    for link, theirs in dump_bodies("getlink_dump"):
        assert isinstance(link, rt.Link)
        assert link.index == theirs["index"]
        assert link.name == theirs.get_attr("IFLA_IFNAME")
        assert link.mtu == theirs.get_attr("IFLA_MTU")
        assert link.up == bool(theirs["flags"] & rt.IFF_UP)
        assert link.master == theirs.get_attr("IFLA_MASTER")
        info = theirs.get_attr("IFLA_LINKINFO")
        assert link.kind == (info.get_attr("IFLA_INFO_KIND") if info is not None else None)
        links[link.name] = link
    # The layout hack/record_netlink.py made.
    assert set(links) == {"lo", "rec-br0", "rec-veth0", "rec-veth1"}
    bridge, veth, peer = links["rec-br0"], links["rec-veth0"], links["rec-veth1"]
    assert (bridge.kind, bridge.mtu, bridge.up, bridge.master) == ("bridge", 1400, True, None)
    assert (veth.kind, veth.mtu, veth.master) == ("veth", 1400, bridge.index)
    assert (peer.kind, peer.master) == ("veth", None)
    assert links["lo"].kind is None
    assert links["lo"].up


def test_address_dump() -> None:
    names = {link.index: link.name for link, _ in dump_bodies("getlink_dump")}
    found = set()
    for address, theirs in dump_bodies("getaddr_dump"):
        assert isinstance(address, rt.Address)
        assert address.index == theirs["index"]
        assert address.prefixlen == theirs["prefixlen"]
        assert address.address == IPv4Address(theirs.get_attr("IFA_LOCAL"))
        found.add((names[address.index], str(address.address), address.prefixlen))
    assert found == {
        ("lo", "127.0.0.1", 8),
        ("rec-br0", "10.77.0.1", 24),
        ("rec-veth1", "10.78.0.2", 16),
    }


def test_route_dump() -> None:
    names = {link.index: link.name for link, _ in dump_bodies("getlink_dump")}
    routes = []
    for route, theirs in dump_bodies("getroute_dump"):
        assert isinstance(route, rt.Route)
        assert route.dst_len == theirs["dst_len"]
        assert route.table == theirs.get_attr("RTA_TABLE")
        assert route.oif == theirs.get_attr("RTA_OIF")
        dst = theirs.get_attr("RTA_DST")
        assert route.dst == (IPv4Address(dst) if dst is not None else IPv4Address(0))
        gateway = theirs.get_attr("RTA_GATEWAY")
        assert route.gateway == (IPv4Address(gateway) if gateway is not None else None)
        routes.append(route)
    main = {(str(r.dst), r.dst_len, names[r.oif], r.gateway) for r in routes if r.table == 254}
    assert main == {
        ("0.0.0.0", 0, "rec-veth1", IPv4Address("10.78.0.1")),
        ("10.77.0.0", 24, "rec-br0", None),
        ("10.78.0.0", 16, "rec-veth1", None),
    }
    # The kernel's local table is there too (netlink.host_routes leaves it out).
    assert any(r.table == rt.RT_TABLE_LOCAL for r in routes)


def test_single_link_lookup_ends_with_an_ack() -> None:
    pairs = both("getlink_bridge")
    (link, theirs), (ack, _) = pairs
    headers_agree(link, theirs)
    assert isinstance(link.body, rt.Link)
    assert link.body.name == "rec-br0" == theirs.get_attr("IFLA_IFNAME")
    assert ack.type == rt.NLMSG_ERROR
    assert ack.body == rt.Ack(0)
    assert ack.seq == link.seq


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("getlink_missing", errno.ENODEV),
        ("setlink_ack", 0),
        ("newaddr_exists", errno.EEXIST),
        ("newroute_exists", errno.EEXIST),
    ],
)
def test_acknowledgements(name: str, expected: int) -> None:
    (data,) = datagrams(name)
    length, kind, flags, seq, _pid = HDR.unpack_from(data)
    (error,) = struct.unpack_from("=i", data, HDR.size)
    assert (kind, length, -error) == (rt.NLMSG_ERROR, len(data), expected)
    # NETLINK_CAP_ACK was set, so the kernel did not echo the request back.
    assert flags & rt.NLM_F_CAPPED
    (message,) = rt.decode(data)
    assert (message.type, message.seq) == (kind, seq)
    assert isinstance(message.body, rt.Ack)
    assert message.body.error == expected
