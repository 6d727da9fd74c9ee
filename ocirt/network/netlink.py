"""Links, addresses, routes and named network namespaces over rtnetlink. Does I/O.

Carries out the plans of `ocirt.network.plan`. Messages are built and parsed by the pure
`ocirt.network.rtnetlink`; this module owns the NETLINK_ROUTE sockets: one request at a
time, replies read until the kernel's acknowledgement or the end of the dump. Calls block,
so the manager makes them from a worker thread.

A container's namespace is made in a short-lived thread that unshares its network
namespace, bind-mounts it at `/var/run/netns/<name>` and configures the inside through a
netlink socket opened there (a socket talks to the namespace it was created in). Every
kernel or OS error leaves this module as `ocirt.errors.NetworkError`.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TypeVar

from ocirt import native
from ocirt.errors import NetworkError
from ocirt.network import rtnetlink as rt
from ocirt.network.plan import CONTAINER_IFNAME, BridgePlan, EndpointPlan, Sysctl
from ocirt.network.settings import HostRoute

NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
# The kernel fills a dump datagram up to min(receive buffer, ~32 KiB) unless one message
# needs more; twice that, and MSG_TRUNC tells when even that was not enough.
_RECEIVE_BUFFER = 64 * 1024
_DUMP_ATTEMPTS = 3
_T = TypeVar("_T")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise NetworkError(f"{what}: {exc.strerror or exc}") from exc


class _Socket:
    """One NETLINK_ROUTE socket in the network namespace of the thread that made it.

    Kernel errors come out as `OSError(errno, text)`, as a failed syscall would.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, rt.NETLINK_ROUTE
        )
        try:
            # The kernel's own words in errors, and no echo of the request in them.
            self._sock.setsockopt(rt.SOL_NETLINK, rt.NETLINK_EXT_ACK, 1)
            self._sock.setsockopt(rt.SOL_NETLINK, rt.NETLINK_CAP_ACK, 1)
            self._sock.bind((0, 0))
        except BaseException:
            self._sock.close()
            raise
        self._seq = 0
        self._buffer = bytearray(_RECEIVE_BUFFER)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> _Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def do(self, request: rt.Request) -> list[rt.Body]:
        """Send `request`, return the bodies of its replies; an Ack or Done ends it."""
        self._seq = self._seq % 0xFFFFFFFF + 1
        seq = self._seq
        self._sock.sendto(rt.encode(request, seq), (0, 0))
        found: list[rt.Body] = []
        while True:
            for message in rt.decode(self._receive()):
                # A stale reply of an exchange an exception cut short: not ours.
                if message.seq != seq:
                    continue
                if message.flags & rt.NLM_F_DUMP_INTR:
                    raise _DumpInterrupted
                body = message.body
                if isinstance(body, rt.Ack | rt.Done):
                    if body.error:
                        text = os.strerror(body.error)
                        raise OSError(
                            body.error, f"{text} ({body.message})" if body.message else text
                        )
                    return found
                if body is not None:
                    found.append(body)

    def dump(self, request: rt.Request) -> list[rt.Body]:
        # The kernel flags a dump that raced with a change; read it again, as `ip` advises.
        for _ in range(_DUMP_ATTEMPTS):
            try:
                return self.do(request)
            except _DumpInterrupted:
                continue
        raise OSError(errno.EAGAIN, "dump kept changing while it was read")

    def _receive(self) -> bytes:
        size = self._sock.recv_into(self._buffer, len(self._buffer), socket.MSG_TRUNC)
        if size > len(self._buffer):
            raise OSError(errno.EMSGSIZE, f"netlink reply of {size} bytes was truncated")
        return bytes(self._buffer[:size])

    # -- operations ----------------------------------------------------------------------

    def links(self) -> list[rt.Link]:
        return [b for b in self.dump(rt.dump_links()) if isinstance(b, rt.Link)]

    def addresses(self) -> list[rt.Address]:
        return [b for b in self.dump(rt.dump_addresses()) if isinstance(b, rt.Address)]

    def routes(self) -> list[rt.Route]:
        return [b for b in self.dump(rt.dump_routes()) if isinstance(b, rt.Route)]

    def link(self, name: str) -> rt.Link | None:
        """The link called `name`, None if there is none."""
        if not 0 < len(name.encode()) < rt.IFNAMSIZ:
            return None  # no link can have that name; the kernel would say EINVAL
        try:
            found = self.do(rt.get_link(name))
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        return next((b for b in found if isinstance(b, rt.Link)), None)

    def index(self, name: str) -> int:
        link = self.link(name)
        if link is None:
            raise OSError(errno.ENODEV, f"{os.strerror(errno.ENODEV)}: {name}")
        return link.index


class _DumpInterrupted(Exception):
    pass


class Netlink:
    """One rtnetlink socket in the host namespace, opened on first use and reused."""

    def __init__(self) -> None:
        self._sock: _Socket | None = None
        self._lock = threading.Lock()

    def _host(self) -> _Socket:
        if self._sock is None:
            self._sock = _Socket()
        return self._sock

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _call(self, what: str, fn: Callable[[_Socket], _T]) -> _T:
        with self._lock, _translated(what):
            return fn(self._host())

    # -- facts -------------------------------------------------------------------------

    def host_routes(self) -> list[HostRoute]:
        def read(nl: _Socket) -> list[HostRoute]:
            names = {link.index: link.name for link in nl.links()}
            return [
                HostRoute(
                    IPv4Network((route.dst, route.dst_len), strict=False),
                    names.get(route.oif, ""),
                )
                for route in nl.routes()
                if route.table != rt.RT_TABLE_LOCAL
            ]

        return self._call("reading routes", read)

    def interface_addresses(self) -> dict[str, list[IPv4Address]]:
        def read(nl: _Socket) -> dict[str, list[IPv4Address]]:
            names = {link.index: link.name for link in nl.links()}
            found: dict[str, list[IPv4Address]] = {}
            for addr in nl.addresses():
                name = names.get(addr.index)
                if name:
                    found.setdefault(name, []).append(addr.address)
            return found

        return self._call("reading addresses", read)

    def link_names(self, prefix: str) -> list[str]:
        def read(nl: _Socket) -> list[str]:
            return [link.name for link in nl.links() if link.name.startswith(prefix)]

        return self._call("listing links", read)

    def exists(self, ifname: str) -> bool:
        return self._call("looking up a link", lambda nl: nl.link(ifname) is not None)

    # -- bridge ------------------------------------------------------------------------

    def ensure_bridge(self, plan: BridgePlan) -> bool:
        """Reuse the bridge when it matches the plan, else (re)create it. True if created."""

        def ensure(nl: _Socket) -> bool:
            link = nl.link(plan.name)
            if link is not None:
                addresses = [
                    (a.address, a.prefixlen) for a in nl.addresses() if a.index == link.index
                ]
                if (
                    link.kind == "bridge"
                    and link.mtu == plan.mtu
                    and addresses == [(plan.address.ip, plan.address.network.prefixlen)]
                ):
                    if not link.up:
                        nl.do(rt.set_link(link.index, up=True))
                    return False
                nl.do(rt.delete_link(link.index))
            nl.do(rt.add_bridge(plan.name))
            index = nl.index(plan.name)
            nl.do(rt.set_link(index, mtu=plan.mtu))
            nl.do(rt.add_address(index, plan.address))
            nl.do(rt.set_link(index, up=True))
            return True

        return self._call(f"setting up bridge {plan.name}", ensure)

    def delete_link(self, ifname: str) -> None:
        def delete(nl: _Socket) -> None:
            link = nl.link(ifname)
            if link is None:
                return
            try:
                nl.do(rt.delete_link(link.index))
            except OSError as exc:
                if exc.errno != errno.ENODEV:  # gone in between: as wanted
                    raise

        self._call(f"deleting {ifname}", delete)

    # -- endpoints -----------------------------------------------------------------------

    def create_endpoint(self, plan: EndpointPlan) -> Path:
        """Named netns with `eth0` (address, default route) and `lo` up; the host end of the
        veth on the bridge with hairpin on. Returns the netns path. Undone on failure."""
        path = NETNS_DIR / plan.netns_name
        try:
            _in_new_netns(path, functools.partial(_configure_inside, plan))

            def attach(nl: _Socket) -> None:
                index = nl.index(plan.host_veth)
                bridge = nl.link(plan.bridge)
                if bridge is None:
                    raise NetworkError(f"bridge {plan.bridge} does not exist")
                nl.do(rt.set_link(index, master=bridge.index, up=True))
                # Hairpin lets a container reach itself through a published port.
                nl.do(rt.set_hairpin(index, True))

            self._call(f"attaching {plan.host_veth} to {plan.bridge}", attach)
        except BaseException:
            self.remove_endpoint(plan.netns_name, plan.host_veth)
            raise
        return path

    def remove_endpoint(self, netns_name: str, host_veth: str) -> None:
        """Remove the veth and the named netns; missing parts are fine."""
        self.delete_link(host_veth)
        remove_netns(netns_name)


def _configure_inside(plan: EndpointPlan, *, host_ns_fd: int) -> None:
    with _translated(f"configuring {CONTAINER_IFNAME} in {plan.netns_name}"), _Socket() as nl:
        nl.do(rt.add_veth(CONTAINER_IFNAME, plan.host_veth, plan.mtu, host_ns_fd))
        eth0 = nl.index(CONTAINER_IFNAME)
        nl.do(rt.add_address(eth0, plan.address))
        nl.do(rt.set_link(eth0, up=True))
        nl.do(rt.set_link(nl.index("lo"), up=True))
        nl.do(rt.add_default_route(plan.gateway))


def _ensure_netns_dir() -> None:
    # As `ip netns add` does: a shared bind mount of the directory, so that a netns
    # unmounted here is also unmounted in mount namespaces that copied it (no pinned netns).
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    target = os.path.realpath(NETNS_DIR)
    with open("/proc/self/mountinfo") as mountinfo:
        if any(line.split()[4] == target for line in mountinfo):
            return
    native.mount(target, target, "", native.MS_BIND | native.MS_REC)
    native.mount("", target, "", native.MS_SHARED | native.MS_REC)


def _in_new_netns(path: Path, configure: Callable[..., None]) -> None:
    """Run `configure(host_ns_fd=...)` in a thread inside a new netns bound at `path`.

    Only the thread changes namespace (setns/unshare of CLONE_NEWNET are per task); it ends
    right after, so no pooled thread is ever left in a container's namespace.
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                native.unshare(CLONE_NEWNET)
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0)
                os.close(fd)
                native.mount("/proc/thread-self/ns/net", str(path), "", native.MS_BIND)
                configure(host_ns_fd=host_fd)
            finally:
                os.close(host_fd)
        except BaseException as exc:
            errors.append(exc)

    with _translated(f"creating network namespace {path}"):
        _ensure_netns_dir()
    worker = threading.Thread(target=run, name="ocirt-netns")
    worker.start()
    worker.join()
    if errors:
        exc = errors[0]
        if isinstance(exc, NetworkError):
            raise exc
        raise NetworkError(f"creating network namespace {path}: {exc}") from exc


def netns_addresses(name: str, ifname: str = CONTAINER_IFNAME) -> list[IPv4Address]:
    """The IPv4 addresses of ``ifname`` inside the named netns, read by a short-lived
    thread that joins it (so that no pooled thread is left there); [] if it has none."""
    found: list[IPv4Address] = []
    errors: list[BaseException] = []
    path = NETNS_DIR / name

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                native.setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            with _Socket() as nl:
                link = nl.link(ifname)
                if link is not None:
                    found.extend(a.address for a in nl.addresses() if a.index == link.index)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, name="ocirt-netns-read")
    worker.start()
    worker.join()
    if errors:
        raise NetworkError(f"reading the addresses in network namespace {name}: {errors[0]}")
    return found


def remove_netns(name: str) -> None:
    path = NETNS_DIR / name
    try:
        native.umount(str(path), native.MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise NetworkError(f"unmounting {path}: {exc}") from exc
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise NetworkError(f"removing {path}: {exc}") from exc


def list_netns(prefix: str) -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise NetworkError(f"listing {NETNS_DIR}: {exc}") from exc


def apply_sysctls(sysctls: tuple[Sysctl, ...]) -> None:
    for item in sysctls:
        try:
            with open(item.path, "w") as handle:
                handle.write(item.value)
        except FileNotFoundError:
            if not item.optional:
                raise NetworkError(f"sysctl {item.path} does not exist") from None
        except OSError as exc:
            raise NetworkError(f"cannot set {item.path} = {item.value}: {exc}") from exc
