"""The rtnetlink wire format for the few operations ocirt needs. Pure: bytes in, bytes out.

Requests are built as `Request` values and framed by `encode`; a buffer read from a
NETLINK_ROUTE socket is turned into `Message`s by `decode`, whose bodies are small typed
values (`Link`, `Address`, `Route`, or the `Ack`/`Done` that end an exchange). Anything
else the kernel sends decodes to a body of None. The socket itself lives in `netlink.py`.

Constants and layouts come from the kernel uapi headers <linux/netlink.h>,
<linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h> and <linux/veth.h>. Everything is
in host byte order, as netlink is. A short or inconsistent buffer raises `NetworkError`,
never a raw `struct.error` or `IndexError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from ocirt.errors import NetworkError

# <linux/socket.h>: this module does not import `socket`.
AF_UNSPEC = 0
AF_INET = 2
AF_BRIDGE = 7
SOL_NETLINK = 270

# <linux/netlink.h>
NETLINK_ROUTE = 0
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x01
NLM_F_MULTI = 0x02
NLM_F_ACK = 0x04
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # on NLMSG_ERROR: the request is not echoed back
NLM_F_ACK_TLVS = 0x200  # on NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

# <linux/rtnetlink.h>
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RTN_UNICAST = 1
RTPROT_BOOT = 3
RT_SCOPE_UNIVERSE = 0
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_TABLE = 15

# <linux/if.h>
IFF_UP = 0x1

# <linux/if_link.h>
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_PROTINFO = 12
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_BRPORT_MODE = 4  # hairpin
VETH_INFO_PEER = 1  # <linux/veth.h>

# <linux/if_addr.h>
IFA_ADDRESS = 1
IFA_LOCAL = 2

IFNAMSIZ = 16

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_NLATTR = struct.Struct("=HH")  # len, type
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol,
#                                       scope, type, flags
_ERROR = struct.Struct("=i")
_U32 = struct.Struct("=I")


# -- values ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One request before framing: message type, NLM_F_* flags, and the body after the
    header (fixed struct + attributes)."""

    type: int
    flags: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    name: str
    kind: str | None  # IFLA_INFO_KIND: "bridge", "veth"...; None for plain devices
    mtu: int
    up: bool
    master: int | None


@dataclass(frozen=True, slots=True)
class Address:
    index: int
    address: IPv4Address
    prefixlen: int


@dataclass(frozen=True, slots=True)
class Route:
    dst: IPv4Address
    dst_len: int
    table: int
    oif: int  # 0: none (e.g. multipath)
    gateway: IPv4Address | None


@dataclass(frozen=True, slots=True)
class Ack:
    """NLMSG_ERROR: `error` is a positive errno, 0 for a plain acknowledgement; `message`
    is the kernel's extended-ack text, if it sent one."""

    error: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class Done:
    """NLMSG_DONE, the end of a dump; a dump that failed part-way carries an errno."""

    error: int
    message: str = ""


Body = Link | Address | Route | Ack | Done


@dataclass(frozen=True, slots=True)
class Message:
    type: int
    flags: int
    seq: int
    body: Body | None


# -- encoding ----------------------------------------------------------------------------


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    length = _NLATTR.size + len(value)
    if length > 0xFFFF:
        raise NetworkError(f"netlink attribute {kind} is too long ({len(value)} bytes)")
    return _NLATTR.pack(length, kind) + value + bytes(_align(length) - length)


def u32_attr(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def str_attr(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def ifname_attr(name: str) -> bytes:
    if not 0 < len(name.encode()) < IFNAMSIZ:
        raise NetworkError(f"invalid interface name {name!r}")
    return str_attr(IFLA_IFNAME, name)


def ifinfomsg(family: int = AF_UNSPEC, index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFOMSG.pack(family, 0, index, flags, change)


def encode(request: Request, seq: int, pid: int = 0) -> bytes:
    length = _NLMSGHDR.size + len(request.body)
    return _NLMSGHDR.pack(length, request.type, request.flags, seq, pid) + request.body


_DO = NLM_F_REQUEST | NLM_F_ACK
_CREATE = _DO | NLM_F_CREATE | NLM_F_EXCL
_DUMP = NLM_F_REQUEST | NLM_F_DUMP


def get_link(name: str) -> Request:
    return Request(RTM_GETLINK, _DO, ifinfomsg() + ifname_attr(name))


def dump_links() -> Request:
    return Request(RTM_GETLINK, _DUMP, ifinfomsg())


def dump_addresses() -> Request:
    return Request(RTM_GETADDR, _DUMP, _IFADDRMSG.pack(AF_INET, 0, 0, 0, 0))


def dump_routes() -> Request:
    return Request(RTM_GETROUTE, _DUMP, _RTMSG.pack(AF_INET, 0, 0, 0, 0, 0, 0, 0, 0))


def add_bridge(name: str) -> Request:
    linkinfo = attr(IFLA_LINKINFO, str_attr(IFLA_INFO_KIND, "bridge"))
    return Request(RTM_NEWLINK, _CREATE, ifinfomsg() + ifname_attr(name) + linkinfo)


def add_veth(name: str, peer: str, mtu: int, peer_netns_fd: int) -> Request:
    """A veth pair `name` here and `peer` in the namespace of `peer_netns_fd`, both `mtu`.

    VETH_INFO_PEER holds a whole ifinfomsg and its attributes, as for a link of its own.
    """
    peer_info = (
        ifinfomsg()
        + ifname_attr(peer)
        + u32_attr(IFLA_MTU, mtu)
        + u32_attr(IFLA_NET_NS_FD, peer_netns_fd)
    )
    linkinfo = attr(
        IFLA_LINKINFO,
        str_attr(IFLA_INFO_KIND, "veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_info)),
    )
    body = ifinfomsg() + ifname_attr(name) + u32_attr(IFLA_MTU, mtu) + linkinfo
    return Request(RTM_NEWLINK, _CREATE, body)


def set_link(
    index: int, *, mtu: int | None = None, up: bool | None = None, master: int | None = None
) -> Request:
    """Change only what is given: `up` goes through ifi_change, so other flags stay."""
    flags, change = (0, 0) if up is None else (IFF_UP if up else 0, IFF_UP)
    body = ifinfomsg(index=index, flags=flags, change=change)
    if mtu is not None:
        body += u32_attr(IFLA_MTU, mtu)
    if master is not None:
        body += u32_attr(IFLA_MASTER, master)
    return Request(RTM_SETLINK, _DO, body)


def delete_link(index: int) -> Request:
    return Request(RTM_DELLINK, _DO, ifinfomsg(index=index))


def add_address(index: int, address: IPv4Interface) -> Request:
    # As `ip addr add` without `brd`: local and address, no broadcast address.
    packed = address.ip.packed
    header = _IFADDRMSG.pack(AF_INET, address.network.prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    body = header + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
    return Request(RTM_NEWADDR, _CREATE, body)


def add_default_route(gateway: IPv4Address) -> Request:
    header = _RTMSG.pack(
        AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
    )
    return Request(RTM_NEWROUTE, _CREATE, header + attr(RTA_GATEWAY, gateway.packed))


def set_hairpin(index: int, on: bool) -> Request:
    """Bridge-port hairpin mode. The kernel reads IFLA_PROTINFO as port attributes only
    when NLA_F_NESTED is set (else as a bare STP state byte)."""
    protinfo = attr(IFLA_PROTINFO | NLA_F_NESTED, attr(IFLA_BRPORT_MODE, bytes([int(on)])))
    return Request(RTM_SETLINK, _DO, ifinfomsg(family=AF_BRIDGE, index=index) + protinfo)


# -- decoding ----------------------------------------------------------------------------


def _malformed(what: str) -> NetworkError:
    return NetworkError(f"malformed rtnetlink message: {what}")


def decode(buffer: bytes) -> list[Message]:
    """Every message in one datagram, in order."""
    messages = []
    offset = 0
    while offset < len(buffer):
        if len(buffer) - offset < _NLMSGHDR.size:
            raise _malformed(f"{len(buffer) - offset} stray bytes after the last message")
        length, kind, flags, seq, _pid = _NLMSGHDR.unpack_from(buffer, offset)
        if length < _NLMSGHDR.size or offset + length > len(buffer):
            raise _malformed(f"length {length} at offset {offset} of {len(buffer)}")
        payload = buffer[offset + _NLMSGHDR.size : offset + length]
        messages.append(Message(kind, flags, seq, _body(kind, flags, payload)))
        offset += _align(length)
    return messages


def attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type without NLA_F_* bits, value) of each attribute in `data`."""
    offset = 0
    # Up to 3 bytes of trailing padding are legal when the enclosing length is unaligned.
    while len(data) - offset >= _NLATTR.size:
        length, kind = _NLATTR.unpack_from(data, offset)
        if length < _NLATTR.size or offset + length > len(data):
            raise _malformed(f"attribute {kind & NLA_TYPE_MASK} has length {length}")
        yield kind & NLA_TYPE_MASK, data[offset + _NLATTR.size : offset + length]
        offset += _align(length)


def _attribute_map(data: bytes) -> dict[int, bytes]:
    return dict(attributes(data))


def _fixed(layout: struct.Struct, payload: bytes, what: str) -> tuple[int, ...]:
    if len(payload) < layout.size:
        raise _malformed(f"{what} of {len(payload)} bytes")
    return layout.unpack_from(payload)


def _u32(value: bytes, what: str) -> int:
    if len(value) != _U32.size:
        raise _malformed(f"{what} of {len(value)} bytes")
    return int(_U32.unpack(value)[0])


def _ipv4(value: bytes, what: str) -> IPv4Address:
    if len(value) != 4:
        raise _malformed(f"{what} of {len(value)} bytes")
    return IPv4Address(value)


def _string(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode(errors="replace")


def _body(kind: int, flags: int, payload: bytes) -> Body | None:
    if kind == NLMSG_ERROR:
        return _ack(flags, payload)
    if kind == NLMSG_DONE:
        # Old kernels send an empty DONE; newer ones an int, maybe with ext-ack attributes.
        if not payload:
            return Done(0)
        (error,) = _fixed(_ERROR, payload, "NLMSG_DONE")
        if error > 0:
            raise _malformed(f"NLMSG_DONE with error {error}")
        rest = payload[_ERROR.size :] if flags & NLM_F_ACK_TLVS else b""
        return Done(-error, _ext_message(rest))
    if kind == RTM_NEWLINK:
        return _link(payload)
    if kind == RTM_NEWADDR:
        return _address(payload)
    if kind == RTM_NEWROUTE:
        return _route(payload)
    return None


def _ack(flags: int, payload: bytes) -> Ack:
    (error,) = _fixed(_ERROR, payload, "NLMSG_ERROR")
    if error > 0:
        raise _malformed(f"NLMSG_ERROR with error {error}")
    request_len = _NLMSGHDR.size
    if not flags & NLM_F_CAPPED:
        # The request is echoed in full (NETLINK_CAP_ACK unset): skip it by its own length.
        (request_len, *_) = _fixed(_NLMSGHDR, payload[_ERROR.size :], "echoed request")
        if request_len < _NLMSGHDR.size:
            raise _malformed(f"echoed request of length {request_len}")
    start = _ERROR.size + _align(request_len)
    if flags & NLM_F_ACK_TLVS:
        if start > len(payload):
            raise _malformed("extended ack past the end of NLMSG_ERROR")
        return Ack(-error, _ext_message(payload[start:]))
    return Ack(-error)


def _ext_message(data: bytes) -> str:
    return next((_string(v) for k, v in attributes(data) if k == NLMSGERR_ATTR_MSG), "")


def _link(payload: bytes) -> Link:
    _family, _type, index, flags, _change = _fixed(_IFINFOMSG, payload, "ifinfomsg")
    attrs = _attribute_map(payload[_IFINFOMSG.size :])
    kind = None
    if IFLA_LINKINFO in attrs:
        info = _attribute_map(attrs[IFLA_LINKINFO])
        if IFLA_INFO_KIND in info:
            kind = _string(info[IFLA_INFO_KIND])
    master = _u32(attrs[IFLA_MASTER], "IFLA_MASTER") if IFLA_MASTER in attrs else 0
    return Link(
        index=index,
        name=_string(attrs.get(IFLA_IFNAME, b"")),
        kind=kind,
        mtu=_u32(attrs[IFLA_MTU], "IFLA_MTU") if IFLA_MTU in attrs else 0,
        up=bool(flags & IFF_UP),
        master=master or None,
    )


def _address(payload: bytes) -> Address | None:
    family, prefixlen, _flags, _scope, index = _fixed(_IFADDRMSG, payload, "ifaddrmsg")
    if family != AF_INET:
        return None
    attrs = _attribute_map(payload[_IFADDRMSG.size :])
    # IFA_LOCAL is this host's address; IFA_ADDRESS is the peer's on point-to-point links.
    value = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
    if value is None:
        raise _malformed("IPv4 address without IFA_LOCAL or IFA_ADDRESS")
    return Address(index, _ipv4(value, "IFA_LOCAL"), prefixlen)


def _route(payload: bytes) -> Route | None:
    family, dst_len, _src, _tos, table, *_rest = _fixed(_RTMSG, payload, "rtmsg")
    if family != AF_INET:
        return None
    if dst_len > 32:
        raise _malformed(f"IPv4 route with prefix length {dst_len}")
    attrs = _attribute_map(payload[_RTMSG.size :])
    return Route(
        dst=_ipv4(attrs[RTA_DST], "RTA_DST") if RTA_DST in attrs else IPv4Address(0),
        dst_len=dst_len,
        # rtm_table is one byte; RTA_TABLE carries the full id of tables above 255.
        table=_u32(attrs[RTA_TABLE], "RTA_TABLE") if RTA_TABLE in attrs else table,
        oif=_u32(attrs[RTA_OIF], "RTA_OIF") if RTA_OIF in attrs else 0,
        gateway=_ipv4(attrs[RTA_GATEWAY], "RTA_GATEWAY") if RTA_GATEWAY in attrs else None,
    )
