"""netlink.py against a fake kernel that answers with recorded replies (conftest.FakeKernel).

What is checked: the requests sent and their order, how replies are matched to requests
(sequence numbers, interrupted dumps, truncation, kernel errors with their ext-ack text), and
the namespace plumbing with the mount/unshare calls recorded instead of made.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from ocirt import native
from ocirt.errors import NetworkError
from ocirt.network import netlink
from ocirt.network import rtnetlink as rt
from ocirt.network.plan import BridgePlan, EndpointPlan, Sysctl
from ocirt.network.settings import HostRoute
from tests.unit.network.conftest import FakeKernel, ack, frame, link_payload

BRIDGE = BridgePlan("rec-br0", 1400, IPv4Interface("10.77.0.1/24"), ())


def types_sent(kernel: FakeKernel) -> list[int]:
    return [kind for kind, _flags, _body in kernel.requests]


def ifinfo(body: bytes) -> tuple[int, int, int, int, dict[int, bytes]]:
    """(family, index, flags, change, attributes) of an ifinfomsg request body."""
    family, _type, index, flags, change = struct.unpack_from("=BxHiII", body)
    return family, index, flags, change, dict(rt.attributes(body[16:]))


def test_socket_options_ask_for_kernel_texts_without_echo(kernel: FakeKernel) -> None:
    netlink.Netlink().exists("lo")
    (sock,) = kernel.sockets
    assert sock.options == {
        (rt.SOL_NETLINK, rt.NETLINK_EXT_ACK): 1,
        (rt.SOL_NETLINK, rt.NETLINK_CAP_ACK): 1,
    }


def test_host_routes_name_their_device_and_leave_out_the_local_table(
    kernel: FakeKernel,
) -> None:
    routes = netlink.Netlink().host_routes()
    assert sorted(routes, key=str) == sorted(
        [
            HostRoute(IPv4Network("0.0.0.0/0"), "rec-veth1"),
            HostRoute(IPv4Network("10.77.0.0/24"), "rec-br0"),
            HostRoute(IPv4Network("10.78.0.0/16"), "rec-veth1"),
        ],
        key=str,
    )


def test_interface_addresses(kernel: FakeKernel) -> None:
    assert netlink.Netlink().interface_addresses() == {
        "lo": [IPv4Address("127.0.0.1")],
        "rec-br0": [IPv4Address("10.77.0.1")],
        "rec-veth1": [IPv4Address("10.78.0.2")],
    }


def test_link_names_by_prefix(kernel: FakeKernel) -> None:
    assert sorted(netlink.Netlink().link_names("rec-veth")) == ["rec-veth0", "rec-veth1"]


def test_exists(kernel: FakeKernel) -> None:
    nl = netlink.Netlink()
    assert nl.exists("rec-br0")
    assert not nl.exists("rec-missing")
    sent = len(kernel.requests)
    # A name no link can have is not even asked about (the kernel would answer EINVAL).
    assert not nl.exists("x" * 16)
    assert not nl.exists("")
    assert len(kernel.requests) == sent


def test_one_socket_is_reused_and_close_drops_it(kernel: FakeKernel) -> None:
    nl = netlink.Netlink()
    nl.exists("lo")
    nl.exists("lo")
    assert len(kernel.sockets) == 1
    nl.close()
    assert kernel.sockets[0].closed
    nl.close()  # idempotent
    nl.exists("lo")
    assert len(kernel.sockets) == 2


def test_a_matching_bridge_is_reused_untouched(kernel: FakeKernel) -> None:
    assert netlink.Netlink().ensure_bridge(BRIDGE) is False
    assert types_sent(kernel) == [rt.RTM_GETLINK, rt.RTM_GETADDR]


def test_a_bridge_that_is_down_is_brought_up(kernel: FakeKernel) -> None:
    index = kernel.index_of("rec-br0")
    payload = bytearray(kernel.links["rec-br0"])
    struct.pack_into("=I", payload, 8, 0)  # ifi_flags: not up
    kernel.links["rec-br0"] = bytes(payload)
    assert netlink.Netlink().ensure_bridge(BRIDGE) is False
    (setlink,) = kernel.sent(rt.RTM_SETLINK)
    assert ifinfo(setlink)[1:4] == (index, rt.IFF_UP, rt.IFF_UP)


@pytest.mark.parametrize(
    "plan",
    [
        BridgePlan("rec-br0", 1500, IPv4Interface("10.77.0.1/24"), ()),
        BridgePlan("rec-br0", 1400, IPv4Interface("10.77.0.1/16"), ()),
        # Not a bridge at all: a veth of that name is replaced.
        BridgePlan("rec-veth1", 1400, IPv4Interface("10.78.0.2/16"), ()),
    ],
    ids=["mtu", "address", "kind"],
)
def test_a_differing_link_is_replaced(kernel: FakeKernel, plan: BridgePlan) -> None:
    old = kernel.index_of(plan.name)
    assert netlink.Netlink().ensure_bridge(plan) is True
    new = kernel.index_of(plan.name)
    assert new != old
    sent = [k for k in types_sent(kernel) if k not in (rt.RTM_GETLINK, rt.RTM_GETADDR)]
    assert sent == [
        rt.RTM_DELLINK,
        rt.RTM_NEWLINK,
        rt.RTM_SETLINK,
        rt.RTM_NEWADDR,
        rt.RTM_SETLINK,
    ]
    (dellink,) = kernel.sent(rt.RTM_DELLINK)
    assert ifinfo(dellink)[1] == old
    mtu_set, up_set = kernel.sent(rt.RTM_SETLINK)
    assert ifinfo(mtu_set)[1] == new
    assert ifinfo(mtu_set)[4][rt.IFLA_MTU] == struct.pack("=I", plan.mtu)
    assert ifinfo(up_set)[1:4] == (new, rt.IFF_UP, rt.IFF_UP)
    (newaddr,) = kernel.sent(rt.RTM_NEWADDR)
    _family, prefixlen, _f, _scope, index = struct.unpack_from("=BBBBI", newaddr)
    assert (prefixlen, index) == (plan.address.network.prefixlen, new)


def test_a_new_bridge_is_created(kernel: FakeKernel) -> None:
    plan = BridgePlan("ocirt-new0", 1500, IPv4Interface("10.9.0.1/24"), ())
    assert netlink.Netlink().ensure_bridge(plan) is True
    assert rt.RTM_DELLINK not in types_sent(kernel)
    (newlink,) = kernel.sent(rt.RTM_NEWLINK)
    attrs = ifinfo(newlink)[4]
    assert attrs[rt.IFLA_IFNAME] == b"ocirt-new0\0"
    assert dict(rt.attributes(attrs[rt.IFLA_LINKINFO]))[rt.IFLA_INFO_KIND] == b"bridge\0"


def test_kernel_errors_carry_the_kernel_text(kernel: FakeKernel) -> None:
    kernel.fail[rt.RTM_NEWLINK] = [errno.EPERM]
    plan = BridgePlan("ocirt-new0", 1500, IPv4Interface("10.9.0.1/24"), ())
    with pytest.raises(NetworkError) as caught:
        netlink.Netlink().ensure_bridge(plan)
    assert caught.value.message == (
        f"setting up bridge ocirt-new0: {os.strerror(errno.EPERM)}"
        f" (fake refusal of type {rt.RTM_NEWLINK})"
    )
    assert isinstance(caught.value.__cause__, OSError)


def test_delete_link(kernel: FakeKernel) -> None:
    nl = netlink.Netlink()
    nl.delete_link("rec-missing")
    assert kernel.sent(rt.RTM_DELLINK) == []
    index = kernel.index_of("rec-veth0")
    nl.delete_link("rec-veth0")
    (dellink,) = kernel.sent(rt.RTM_DELLINK)
    assert ifinfo(dellink)[1] == index
    assert not nl.exists("rec-veth0")


def test_a_link_gone_in_between_is_deleted_enough(kernel: FakeKernel) -> None:
    kernel.fail[rt.RTM_DELLINK] = [errno.ENODEV]
    netlink.Netlink().delete_link("rec-veth0")
    kernel.fail[rt.RTM_DELLINK] = [errno.EBUSY]
    with pytest.raises(NetworkError, match="deleting rec-veth0"):
        netlink.Netlink().delete_link("rec-veth0")


def test_replies_to_an_earlier_exchange_are_skipped(kernel: FakeKernel) -> None:
    # What an exception left unread: an error for sequence number 9999.
    kernel.before_next = [ack(9999, errno.EPERM)]
    assert netlink.Netlink().exists("rec-br0")


def test_an_interrupted_dump_is_read_again(kernel: FakeKernel) -> None:
    kernel.interrupted_dumps = 2
    assert sorted(netlink.Netlink().link_names("rec-br")) == ["rec-br0"]
    assert types_sent(kernel) == [rt.RTM_GETLINK] * 3


def test_a_dump_that_keeps_changing_is_an_error(kernel: FakeKernel) -> None:
    kernel.interrupted_dumps = 3
    with pytest.raises(NetworkError, match="dump kept changing"):
        netlink.Netlink().link_names("rec")


def test_a_truncated_reply_is_an_error(kernel: FakeKernel) -> None:
    kernel.before_next = [bytes(netlink._RECEIVE_BUFFER + 4)]
    with pytest.raises(NetworkError, match="truncated"):
        netlink.Netlink().exists("lo")


def test_a_failed_dump_reports_its_errno(kernel: FakeKernel, monkeypatch: Any) -> None:
    def failing_dump(kind: int, seq: int) -> list[bytes]:
        return [frame(rt.NLMSG_DONE, rt.NLM_F_MULTI, struct.pack("=i", -errno.ENOBUFS), seq)]

    monkeypatch.setattr(kernel, "_dump", failing_dump)
    with pytest.raises(NetworkError, match="reading routes"):
        netlink.Netlink().host_routes()


# -- endpoints ---------------------------------------------------------------------------

PLAN = EndpointPlan(
    container_id="c1",
    bridge="rec-br0",
    netns_name="ocirt-test-c1",
    host_veth="veth-c1",
    mtu=1400,
    address=IPv4Interface("10.77.0.5/24"),
    gateway=IPv4Address("10.77.0.1"),
)


@pytest.fixture
def removed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    gone: list[str] = []
    monkeypatch.setattr(netlink, "remove_netns", gone.append)
    return gone


def fake_netns(kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """_in_new_netns replaced: the host end of the veth appears, as configure would make it."""
    made: list[Path] = []

    def in_new_netns(path: Path, configure: Callable[..., None]) -> None:
        made.append(path)
        kernel.links[PLAN.host_veth] = link_payload(
            77, PLAN.host_veth, kind="veth", mtu=1400, up=False
        )

    monkeypatch.setattr(netlink, "_in_new_netns", in_new_netns)
    return made


def test_create_endpoint_puts_the_host_end_on_the_bridge(
    kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch, removed: list[str]
) -> None:
    made = fake_netns(kernel, monkeypatch)
    path = netlink.Netlink().create_endpoint(PLAN)
    assert path == netlink.NETNS_DIR / "ocirt-test-c1" == made[0]
    master, hairpin = kernel.sent(rt.RTM_SETLINK)
    veth = kernel.index_of("veth-c1")
    family, index, flags, change, attrs = ifinfo(master)
    assert (family, index, flags, change) == (rt.AF_UNSPEC, veth, rt.IFF_UP, rt.IFF_UP)
    assert attrs[rt.IFLA_MASTER] == struct.pack("=I", kernel.index_of("rec-br0"))
    family, index, _flags, _change, attrs = ifinfo(hairpin)
    assert (family, index) == (rt.AF_BRIDGE, veth)
    assert dict(rt.attributes(attrs[rt.IFLA_PROTINFO])) == {rt.IFLA_BRPORT_MODE: b"\x01"}
    assert removed == []


def test_a_failed_endpoint_is_undone(
    kernel: FakeKernel, monkeypatch: pytest.MonkeyPatch, removed: list[str]
) -> None:
    fake_netns(kernel, monkeypatch)
    del kernel.links["rec-br0"]
    with pytest.raises(NetworkError, match="bridge rec-br0 does not exist"):
        netlink.Netlink().create_endpoint(PLAN)
    assert removed == ["ocirt-test-c1"]
    assert not netlink.Netlink().exists("veth-c1")


def test_configure_inside_makes_eth0_and_the_default_route(kernel: FakeKernel) -> None:
    netlink._configure_inside(PLAN, host_ns_fd=42)
    assert types_sent(kernel) == [
        rt.RTM_NEWLINK,  # the veth pair, its peer sent to the host
        rt.RTM_GETLINK,
        rt.RTM_NEWADDR,
        rt.RTM_SETLINK,
        rt.RTM_GETLINK,
        rt.RTM_SETLINK,
        rt.RTM_NEWROUTE,
    ]
    (newlink,) = kernel.sent(rt.RTM_NEWLINK)
    attrs = ifinfo(newlink)[4]
    assert attrs[rt.IFLA_IFNAME] == b"eth0\0"
    info = dict(rt.attributes(attrs[rt.IFLA_LINKINFO]))
    peer = dict(rt.attributes(info[rt.IFLA_INFO_DATA]))[rt.VETH_INFO_PEER]
    peer_attrs = dict(rt.attributes(peer[16:]))
    assert peer_attrs[rt.IFLA_IFNAME] == b"veth-c1\0"
    assert peer_attrs[rt.IFLA_NET_NS_FD] == struct.pack("=I", 42)
    lo_up = kernel.sent(rt.RTM_SETLINK)[1]
    assert ifinfo(lo_up)[1] == kernel.index_of("lo")
    (route,) = kernel.sent(rt.RTM_NEWROUTE)
    assert dict(rt.attributes(route[12:]))[rt.RTA_GATEWAY] == IPv4Address("10.77.0.1").packed
    # The socket opened in the namespace is closed again.
    assert all(sock.closed for sock in kernel.sockets)


def test_configure_inside_errors_name_the_namespace(kernel: FakeKernel) -> None:
    kernel.fail[rt.RTM_NEWROUTE] = [errno.ENETUNREACH]
    with pytest.raises(NetworkError, match="configuring eth0 in ocirt-test-c1"):
        netlink._configure_inside(PLAN, host_ns_fd=42)


@pytest.fixture
def mounts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[Any, ...]]:
    """NETNS_DIR in tmp_path; mount, umount and unshare recorded, never made."""
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(netlink, "NETNS_DIR", tmp_path / "netns")
    monkeypatch.setattr(native, "mount", lambda *a: calls.append(("mount", *a)))
    monkeypatch.setattr(native, "umount", lambda *a: calls.append(("umount", *a)))
    monkeypatch.setattr(native, "unshare", lambda *a: calls.append(("unshare", *a)))
    return calls


def test_in_new_netns_binds_the_namespace_and_configures_it_in_a_thread(
    mounts: list[tuple[Any, ...]],
) -> None:
    path = netlink.NETNS_DIR / "ocirt-test-c1"
    seen: list[tuple[int, str]] = []

    def configure(*, host_ns_fd: int) -> None:
        seen.append((host_ns_fd, threading.current_thread().name))
        os.fstat(host_ns_fd)  # still open while configuring

    netlink._in_new_netns(path, configure)
    target = os.path.realpath(netlink.NETNS_DIR)
    assert mounts == [
        # The directory becomes a shared bind mount, as `ip netns add` makes it.
        ("mount", target, target, "", native.MS_BIND | native.MS_REC),
        ("mount", "", target, "", native.MS_SHARED | native.MS_REC),
        ("unshare", netlink.CLONE_NEWNET),
        ("mount", "/proc/thread-self/ns/net", str(path), "", native.MS_BIND),
    ]
    assert path.is_file()
    ((fd, thread),) = seen
    assert thread == "ocirt-netns"
    with pytest.raises(OSError):
        os.fstat(fd)  # closed afterwards


def test_in_new_netns_errors(mounts: list[tuple[Any, ...]]) -> None:
    path = netlink.NETNS_DIR / "ocirt-test-c1"

    def broken(*, host_ns_fd: int) -> None:
        raise ValueError("boom")

    with pytest.raises(NetworkError, match=r"creating network namespace .*: boom"):
        netlink._in_new_netns(path, broken)

    def refused(*, host_ns_fd: int) -> None:
        raise NetworkError("configuring eth0: no")

    with pytest.raises(NetworkError) as caught:
        netlink._in_new_netns(netlink.NETNS_DIR / "other", refused)
    assert caught.value.message == "configuring eth0: no"
    # An existing bind target is refused (O_EXCL): no namespace is mounted over it.
    with pytest.raises(NetworkError, match="File exists"):
        netlink._in_new_netns(path, lambda **_: None)


def test_remove_netns(mounts: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch) -> None:
    netlink.NETNS_DIR.mkdir()
    (netlink.NETNS_DIR / "ns1").touch()
    netlink.remove_netns("ns1")
    assert mounts == [("umount", str(netlink.NETNS_DIR / "ns1"), native.MNT_DETACH)]
    assert not (netlink.NETNS_DIR / "ns1").exists()
    netlink.remove_netns("ns1")  # nothing left: fine


@pytest.mark.parametrize(("code", "fails"), [(errno.EINVAL, False), (errno.EBUSY, True)])
def test_remove_netns_unmount_errors(
    mounts: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch, code: int, fails: bool
) -> None:
    def umount(*_: Any) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(native, "umount", umount)
    if fails:
        with pytest.raises(NetworkError, match="unmounting"):
            netlink.remove_netns("ns1")
    else:
        netlink.remove_netns("ns1")


def test_list_netns(mounts: list[tuple[Any, ...]]) -> None:
    assert netlink.list_netns("ocirt-") == []
    netlink.NETNS_DIR.mkdir()
    for name in ("ocirt-b", "ocirt-a", "other"):
        (netlink.NETNS_DIR / name).touch()
    assert netlink.list_netns("ocirt-") == ["ocirt-a", "ocirt-b"]


def test_apply_sysctls(tmp_path: Path) -> None:
    present = tmp_path / "ip_forward"
    present.write_text("0")
    netlink.apply_sysctls(
        (Sysctl(str(present), "1"), Sysctl(str(tmp_path / "no/such"), "1", optional=True))
    )
    assert present.read_text() == "1"
    with pytest.raises(NetworkError, match="does not exist"):
        # As in /proc: a missing key cannot be created (here: its directory is missing).
        netlink.apply_sysctls((Sysctl(str(tmp_path / "no/such"), "1"),))
    with pytest.raises(NetworkError, match="cannot set"):
        netlink.apply_sysctls((Sysctl(str(tmp_path), "1"),))
