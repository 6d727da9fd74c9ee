"""The rtnetlink codec: requests checked field by field, replies built by hand."""

from __future__ import annotations

import contextlib
import errno
import random
import struct
from ipaddress import IPv4Address, IPv4Interface

import pytest

from ocirt.errors import NetworkError
from ocirt.network import rtnetlink as rt

HDR = struct.Struct("=IHHII")
ATTR = struct.Struct("=HH")
IFINFO = struct.Struct("=BxHiII")
IFADDR = struct.Struct("=BBBBI")
RTMSG = struct.Struct("=BBBBBBBBI")


def split_attrs(data: bytes) -> list[tuple[int, bytes]]:
    """Independent reading of a run of attributes: (raw type incl. flags, value)."""
    out = []
    offset = 0
    while offset < len(data):
        length, kind = ATTR.unpack_from(data, offset)
        out.append((kind, data[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    assert offset == len(data), "attributes must end on a 4-byte boundary"
    return out


def framed(request: rt.Request, seq: int = 7) -> tuple[tuple[int, ...], bytes]:
    data = rt.encode(request, seq)
    header = HDR.unpack_from(data)
    assert header[0] == len(data)
    assert len(data) % 4 == 0
    return header, data[HDR.size :]


# -- replies built by hand ---------------------------------------------------------------


def nlmsg(kind: int, payload: bytes, seq: int = 1, flags: int = 0) -> bytes:
    length = HDR.size + len(payload)
    return HDR.pack(length, kind, flags, seq, 4242) + payload + bytes(-length % 4)


def nla(kind: int, value: bytes) -> bytes:
    return ATTR.pack(4 + len(value), kind) + value + bytes(-(4 + len(value)) % 4)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def link_msg(index: int, name: str, *, up: bool = True, kind: str | None = None) -> bytes:
    attrs = nla(rt.IFLA_IFNAME, name.encode() + b"\0") + nla(rt.IFLA_MTU, u32(1500))
    if kind is not None:
        attrs += nla(rt.IFLA_LINKINFO | rt.NLA_F_NESTED, nla(rt.IFLA_INFO_KIND, kind.encode()))
    return IFINFO.pack(0, 1, index, 0x1003 if up else 0x1002, 0) + attrs


# -- encoding ----------------------------------------------------------------------------


def test_attribute_padding_and_length() -> None:
    data = rt.attr(9, b"abcde")
    assert ATTR.unpack_from(data) == (9, 9)
    assert data[4:9] == b"abcde"
    assert data[9:] == b"\0\0\0"
    assert rt.attr(1, b"") == ATTR.pack(4, 1)
    with pytest.raises(NetworkError, match="too long"):
        rt.attr(1, bytes(0x10000))


def test_link_lookup_request() -> None:
    (_length, kind, flags, seq, pid), body = framed(rt.get_link("kanto-cm0"), seq=99)
    assert (kind, seq, pid) == (rt.RTM_GETLINK, 99, 0)
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_ACK
    assert IFINFO.unpack_from(body) == (0, 0, 0, 0, 0)
    assert split_attrs(body[IFINFO.size :]) == [(rt.IFLA_IFNAME, b"kanto-cm0\0")]


@pytest.mark.parametrize("name", ["", "sixteen-chars-xx", "x" * 40])
def test_interface_names_the_kernel_would_refuse_are_refused(name: str) -> None:
    with pytest.raises(NetworkError, match="invalid interface name"):
        rt.get_link(name)


@pytest.mark.parametrize(
    ("request_", "kind", "family", "struct_"),
    [
        (rt.dump_links(), rt.RTM_GETLINK, 0, IFINFO),
        (rt.dump_addresses(), rt.RTM_GETADDR, rt.AF_INET, IFADDR),
        (rt.dump_routes(), rt.RTM_GETROUTE, rt.AF_INET, RTMSG),
    ],
)
def test_dump_requests(
    request_: rt.Request, kind: int, family: int, struct_: struct.Struct
) -> None:
    (_, msg_type, flags, _, _), body = framed(request_)
    assert msg_type == kind
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_DUMP == 0x301
    assert len(body) == struct_.size
    assert body[0] == family
    assert body[1:] == bytes(struct_.size - 1)


def test_add_bridge() -> None:
    (_, kind, flags, _, _), body = framed(rt.add_bridge("br-x"))
    assert kind == rt.RTM_NEWLINK
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_ACK | rt.NLM_F_CREATE | rt.NLM_F_EXCL == 0x605
    assert IFINFO.unpack_from(body) == (0, 0, 0, 0, 0)
    (name, linkinfo) = split_attrs(body[IFINFO.size :])
    assert name == (rt.IFLA_IFNAME, b"br-x\0")
    assert linkinfo[0] == rt.IFLA_LINKINFO == 18
    assert split_attrs(linkinfo[1]) == [(rt.IFLA_INFO_KIND, b"bridge\0")]


def test_add_veth_with_its_peer_in_another_namespace() -> None:
    (_, kind, flags, _, _), body = framed(rt.add_veth("eth0", "veth1234abc", 1400, 17))
    assert kind == rt.RTM_NEWLINK
    assert flags & (rt.NLM_F_CREATE | rt.NLM_F_EXCL) == rt.NLM_F_CREATE | rt.NLM_F_EXCL
    attrs = split_attrs(body[IFINFO.size :])
    assert attrs[:2] == [(rt.IFLA_IFNAME, b"eth0\0"), (rt.IFLA_MTU, u32(1400))]
    assert attrs[2][0] == rt.IFLA_LINKINFO
    info = split_attrs(attrs[2][1])
    assert info[0] == (rt.IFLA_INFO_KIND, b"veth\0")
    assert info[1][0] == rt.IFLA_INFO_DATA
    [(peer_type, peer)] = split_attrs(info[1][1])
    assert peer_type == rt.VETH_INFO_PEER == 1
    # The peer is a link description of its own: ifinfomsg, then its attributes.
    assert IFINFO.unpack_from(peer) == (0, 0, 0, 0, 0)
    assert split_attrs(peer[IFINFO.size :]) == [
        (rt.IFLA_IFNAME, b"veth1234abc\0"),
        (rt.IFLA_MTU, u32(1400)),
        (rt.IFLA_NET_NS_FD, u32(17)),
    ]


def test_set_link_changes_only_what_is_given() -> None:
    (_, kind, flags, _, _), body = framed(rt.set_link(5, up=True, master=3))
    assert kind == rt.RTM_SETLINK
    assert flags == rt.NLM_F_REQUEST | rt.NLM_F_ACK
    assert IFINFO.unpack_from(body) == (0, 0, 5, rt.IFF_UP, rt.IFF_UP)
    assert split_attrs(body[IFINFO.size :]) == [(rt.IFLA_MASTER, u32(3))]

    _, body = framed(rt.set_link(5, mtu=9000))
    assert IFINFO.unpack_from(body) == (0, 0, 5, 0, 0)
    assert split_attrs(body[IFINFO.size :]) == [(rt.IFLA_MTU, u32(9000))]

    _, body = framed(rt.set_link(5, up=False))
    assert IFINFO.unpack_from(body) == (0, 0, 5, 0, rt.IFF_UP)


def test_delete_link() -> None:
    (_, kind, flags, _, _), body = framed(rt.delete_link(12))
    assert (kind, flags) == (rt.RTM_DELLINK, rt.NLM_F_REQUEST | rt.NLM_F_ACK)
    assert body == IFINFO.pack(0, 0, 12, 0, 0)


def test_add_address() -> None:
    (_, kind, flags, _, _), body = framed(rt.add_address(4, IPv4Interface("10.9.8.7/22")))
    assert kind == rt.RTM_NEWADDR
    assert flags & rt.NLM_F_CREATE
    assert IFADDR.unpack_from(body) == (rt.AF_INET, 22, 0, rt.RT_SCOPE_UNIVERSE, 4)
    packed = bytes([10, 9, 8, 7])
    assert split_attrs(body[IFADDR.size :]) == [(rt.IFA_LOCAL, packed), (rt.IFA_ADDRESS, packed)]


def test_add_default_route() -> None:
    (_, kind, flags, _, _), body = framed(rt.add_default_route(IPv4Address("10.1.2.1")))
    assert kind == rt.RTM_NEWROUTE
    assert flags & rt.NLM_F_CREATE
    family, dst_len, src_len, tos, table, proto, scope, rtype, rflags = RTMSG.unpack_from(body)
    assert (family, dst_len, src_len, tos) == (rt.AF_INET, 0, 0, 0)
    assert (table, proto, scope, rtype, rflags) == (254, 3, 0, 1, 0)
    assert split_attrs(body[RTMSG.size :]) == [(rt.RTA_GATEWAY, bytes([10, 1, 2, 1]))]


def test_hairpin_is_a_nested_bridge_port_attribute() -> None:
    (_, kind, _, _, _), body = framed(rt.set_hairpin(8, True))
    assert kind == rt.RTM_SETLINK
    assert IFINFO.unpack_from(body) == (rt.AF_BRIDGE, 0, 8, 0, 0)
    [(protinfo_type, protinfo)] = split_attrs(body[IFINFO.size :])
    assert protinfo_type == rt.IFLA_PROTINFO | rt.NLA_F_NESTED == 0x800C
    assert split_attrs(protinfo) == [(rt.IFLA_BRPORT_MODE, b"\x01")]
    _, body = framed(rt.set_hairpin(8, False))
    assert split_attrs(split_attrs(body[IFINFO.size :])[0][1]) == [(rt.IFLA_BRPORT_MODE, b"\0")]


# -- decoding ----------------------------------------------------------------------------


def test_multipart_dump_with_links_and_done() -> None:
    buffer = (
        nlmsg(rt.RTM_NEWLINK, link_msg(1, "lo"), flags=rt.NLM_F_MULTI)
        + nlmsg(rt.RTM_NEWLINK, link_msg(7, "br0", up=False, kind="bridge"), flags=rt.NLM_F_MULTI)
        + nlmsg(rt.NLMSG_DONE, struct.pack("=i", 0), flags=rt.NLM_F_MULTI)
    )
    messages = rt.decode(buffer)
    assert [m.type for m in messages] == [rt.RTM_NEWLINK, rt.RTM_NEWLINK, rt.NLMSG_DONE]
    assert all(m.seq == 1 and m.flags & rt.NLM_F_MULTI for m in messages)
    assert messages[0].body == rt.Link(1, "lo", None, 1500, True, None)
    assert messages[1].body == rt.Link(7, "br0", "bridge", 1500, False, None)
    assert messages[2].body == rt.Done(0)


def test_link_master() -> None:
    payload = link_msg(9, "veth0") + nla(rt.IFLA_MASTER, u32(7))
    [message] = rt.decode(nlmsg(rt.RTM_NEWLINK, payload))
    assert isinstance(message.body, rt.Link)
    assert message.body.master == 7


def test_addresses_prefer_the_local_address() -> None:
    plain = IFADDR.pack(rt.AF_INET, 24, 0, 0, 3) + nla(rt.IFA_ADDRESS, bytes([10, 0, 0, 1]))
    ptp = (
        IFADDR.pack(rt.AF_INET, 32, 0, 0, 4)
        + nla(rt.IFA_ADDRESS, bytes([10, 0, 0, 9]))
        + nla(rt.IFA_LOCAL, bytes([10, 0, 0, 8]))
        + nla(3, b"tun0\0")  # IFA_LABEL, not decoded
    )
    ipv6 = IFADDR.pack(10, 64, 0, 0, 4) + nla(rt.IFA_ADDRESS, bytes(16))
    bodies = [m.body for m in rt.decode(nlmsg(20, plain) + nlmsg(20, ptp) + nlmsg(20, ipv6))]
    assert bodies == [
        rt.Address(3, IPv4Address("10.0.0.1"), 24),
        rt.Address(4, IPv4Address("10.0.0.8"), 32),
        None,
    ]


def test_routes() -> None:
    default = RTMSG.pack(rt.AF_INET, 0, 0, 0, 254, 3, 0, 1, 0) + nla(
        rt.RTA_GATEWAY, bytes([192, 0, 2, 1])
    )
    default += nla(rt.RTA_OIF, u32(2)) + nla(rt.RTA_TABLE, u32(254))
    big_table = (
        RTMSG.pack(rt.AF_INET, 16, 0, 0, 252, 3, 0, 1, 0)
        + nla(rt.RTA_DST, bytes([10, 5, 0, 0]))
        + nla(rt.RTA_TABLE, u32(1000))
    )
    bodies = [m.body for m in rt.decode(nlmsg(24, default) + nlmsg(24, big_table))]
    assert bodies == [
        rt.Route(IPv4Address(0), 0, 254, 2, IPv4Address("192.0.2.1")),
        rt.Route(IPv4Address("10.5.0.0"), 16, 1000, 0, None),
    ]


def test_error_with_extended_ack_message() -> None:
    echoed = HDR.pack(40, rt.RTM_NEWLINK, 0x605, 5, 0)
    ext = nla(rt.NLMSGERR_ATTR_MSG, b"Unknown device type\0") + nla(2, u32(32))
    payload = struct.pack("=i", -errno.EOPNOTSUPP) + echoed + ext
    flags = rt.NLM_F_CAPPED | rt.NLM_F_ACK_TLVS
    [message] = rt.decode(nlmsg(rt.NLMSG_ERROR, payload, seq=5, flags=flags))
    assert message.seq == 5
    assert message.body == rt.Ack(errno.EOPNOTSUPP, "Unknown device type")


def test_error_echoing_the_whole_request_is_skipped_by_its_length() -> None:
    request = rt.encode(rt.get_link("eth9"), 3)
    ext = nla(rt.NLMSGERR_ATTR_MSG, b"no such\0")
    payload = struct.pack("=i", -errno.ENODEV) + request + ext
    [message] = rt.decode(nlmsg(rt.NLMSG_ERROR, payload, flags=rt.NLM_F_ACK_TLVS))
    assert message.body == rt.Ack(errno.ENODEV, "no such")
    [message] = rt.decode(nlmsg(rt.NLMSG_ERROR, struct.pack("=i", -errno.ENODEV) + request))
    assert message.body == rt.Ack(errno.ENODEV, "")


def test_plain_ack_and_failed_dump() -> None:
    ack = struct.pack("=i", 0) + HDR.pack(32, 19, 5, 2, 0)
    done = struct.pack("=i", -errno.EINTR)
    bodies = [
        m.body
        for m in rt.decode(
            nlmsg(rt.NLMSG_ERROR, ack, flags=rt.NLM_F_CAPPED)
            + nlmsg(rt.NLMSG_DONE, done)
            + nlmsg(rt.NLMSG_DONE, b"")
            + nlmsg(rt.NLMSG_NOOP, b"")
        )
    ]
    assert bodies == [rt.Ack(0), rt.Done(errno.EINTR), rt.Done(0), None]


def test_unknown_attributes_and_unaligned_last_message_are_accepted() -> None:
    payload = link_msg(2, "eth0") + nla(999, b"\xff" * 7)
    raw = HDR.pack(HDR.size + len(payload) - 1, rt.RTM_NEWLINK, 0, 1, 0) + payload[:-1]
    [message] = rt.decode(raw)
    assert isinstance(message.body, rt.Link)
    assert message.body.name == "eth0"


HOSTILE = [
    (b"\x01\x02", "stray bytes"),
    (HDR.pack(8, 16, 0, 1, 0), "length 8"),
    (HDR.pack(64, 16, 0, 1, 0), "length 64"),
    (nlmsg(rt.RTM_NEWLINK, b"\0" * 8), "ifinfomsg of 8 bytes"),
    (nlmsg(rt.RTM_NEWLINK, IFINFO.pack(0, 0, 1, 0, 0) + ATTR.pack(40, 3)), "attribute 3"),
    (nlmsg(rt.RTM_NEWLINK, IFINFO.pack(0, 0, 1, 0, 0) + ATTR.pack(2, 3)), "length 2"),
    (nlmsg(rt.RTM_NEWLINK, IFINFO.pack(0, 0, 1, 0, 0) + nla(4, b"\1\2")), "IFLA_MTU"),
    (
        nlmsg(rt.RTM_NEWLINK, IFINFO.pack(0, 0, 1, 0, 0) + nla(18, ATTR.pack(99, 1))),
        "attribute 1",
    ),
    (nlmsg(rt.RTM_NEWADDR, IFADDR.pack(2, 24, 0, 0, 1)), "without IFA_LOCAL"),
    (nlmsg(rt.RTM_NEWADDR, IFADDR.pack(2, 24, 0, 0, 1) + nla(2, bytes(16))), "IFA_LOCAL of 16"),
    (nlmsg(rt.RTM_NEWROUTE, RTMSG.pack(2, 40, 0, 0, 254, 0, 0, 1, 0)), "prefix length 40"),
    (nlmsg(rt.RTM_NEWROUTE, RTMSG.pack(2, 8, 0, 0, 254, 0, 0, 1, 0) + nla(1, b"\1")), "RTA_DST"),
    (nlmsg(rt.NLMSG_ERROR, b"\0\0"), "NLMSG_ERROR of 2"),
    (nlmsg(rt.NLMSG_ERROR, struct.pack("=i", 5)), "error 5"),
    (nlmsg(rt.NLMSG_ERROR, struct.pack("=i", -1) + b"\0" * 4), "echoed request of 4"),
    (nlmsg(rt.NLMSG_ERROR, struct.pack("=i", -1) + HDR.pack(3, 0, 0, 0, 0)), "length 3"),
    (
        nlmsg(rt.NLMSG_ERROR, struct.pack("=i", -1) + HDR.pack(400, 0, 0, 0, 0), flags=0x200),
        "past the end",
    ),
    (nlmsg(rt.NLMSG_DONE, b"\1\0"), "NLMSG_DONE of 2"),
]


@pytest.mark.parametrize(("buffer", "why"), HOSTILE)
def test_malformed_input_raises_a_clear_error(buffer: bytes, why: str) -> None:
    with pytest.raises(NetworkError, match=f"malformed rtnetlink message: .*{why}"):
        rt.decode(buffer)


def test_random_corruption_never_escapes_as_a_raw_error() -> None:
    good = (
        nlmsg(rt.RTM_NEWLINK, link_msg(7, "br0", kind="bridge"))
        + nlmsg(24, RTMSG.pack(2, 24, 0, 0, 254, 3, 0, 1, 0) + nla(1, bytes(4)))
        + nlmsg(rt.NLMSG_ERROR, struct.pack("=i", -1) + HDR.pack(16, 0, 0, 0, 0), flags=0x300)
    )
    rng = random.Random(1234)
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = bytes(data[: rng.randrange(len(data) + 1)])
        for candidate in (bytes(data), cut):
            with contextlib.suppress(NetworkError):
                rt.decode(candidate)
