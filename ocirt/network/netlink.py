"""Links, addresses, routes and named network namespaces, through pyroute2. Does I/O.

Carries out the plans of `ocirt.network.plan`. pyroute2 0.9's `IPRoute` is a synchronous
wrapper with an event loop of its own (runtime-net-logs §4.4), so this module must not be
called from a thread that runs an asyncio loop; the manager calls it from a worker thread.

A container's namespace is made in a short-lived thread that unshares its network
namespace, bind-mounts it at `/var/run/netns/<name>` and configures the inside through a
netlink socket opened there. That avoids the fork pyroute2 uses for `netns=` sockets and
keeps the set-up in the low milliseconds. Every pyroute2 or OS error leaves this module as
`ocirt.errors.NetworkError`.
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
from typing import Any, TypeVar

from ocirt import native
from ocirt.errors import NetworkError
from ocirt.network.plan import CONTAINER_IFNAME, BridgePlan, EndpointPlan, Sysctl
from ocirt.network.settings import HostRoute

NETNS_DIR = Path("/var/run/netns")
CLONE_NEWNET = 0x40000000
_LOCAL_TABLE = 255
_T = TypeVar("_T")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    from pyroute2 import NetlinkError

    try:
        yield
    except NetlinkError as exc:
        raise NetworkError(f"{what}: {exc}") from exc
    except OSError as exc:
        raise NetworkError(f"{what}: {exc}") from exc


class Netlink:
    """One rtnetlink socket in the host namespace, opened on first use and reused."""

    def __init__(self) -> None:
        self._ipr: Any = None
        self._lock = threading.Lock()

    def _host(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        with self._lock:
            if self._ipr is not None:
                self._ipr.close()
                self._ipr = None

    def _call(self, what: str, fn: Callable[[Any], _T]) -> _T:
        with self._lock, _translated(what):
            return fn(self._host())

    # -- facts -------------------------------------------------------------------------

    def host_routes(self) -> list[HostRoute]:
        def read(ipr: Any) -> list[HostRoute]:
            names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
            routes = []
            for route in ipr.get_routes(family=socket.AF_INET):
                if route.get("table") == _LOCAL_TABLE:
                    continue
                dst = route.get("dst") or "0.0.0.0"
                network = IPv4Network(f"{dst}/{route['dst_len']}", strict=False)
                routes.append(HostRoute(network, names.get(route.get("oif"), "") or ""))
            return routes

        return self._call("reading routes", read)

    def interface_addresses(self) -> dict[str, list[IPv4Address]]:
        def read(ipr: Any) -> dict[str, list[IPv4Address]]:
            names = {link["index"]: link.get("ifname") for link in ipr.get_links()}
            found: dict[str, list[IPv4Address]] = {}
            for addr in ipr.get_addr(family=socket.AF_INET):
                name = names.get(addr["index"])
                if name:
                    found.setdefault(name, []).append(IPv4Address(addr.get("address")))
            return found

        return self._call("reading addresses", read)

    def link_names(self, prefix: str) -> list[str]:
        def read(ipr: Any) -> list[str]:
            return [
                str(link.get("ifname"))
                for link in ipr.get_links()
                if str(link.get("ifname")).startswith(prefix)
            ]

        return self._call("listing links", read)

    def exists(self, ifname: str) -> bool:
        return bool(self._call("looking up a link", lambda ipr: ipr.link_lookup(ifname=ifname)))

    # -- bridge ------------------------------------------------------------------------

    def ensure_bridge(self, plan: BridgePlan) -> bool:
        """Reuse the bridge when it matches the plan, else (re)create it. True if created."""

        def ensure(ipr: Any) -> bool:
            found = ipr.link_lookup(ifname=plan.name)
            if found:
                index = found[0]
                link = ipr.get_links(index)[0]
                addresses = [
                    (a.get("address"), a["prefixlen"])
                    for a in ipr.get_addr(index=index, family=socket.AF_INET)
                ]
                if (
                    link.get(("linkinfo", "kind")) == "bridge"
                    and link.get("mtu") == plan.mtu
                    and addresses == [(str(plan.address.ip), plan.address.network.prefixlen)]
                ):
                    if not link["flags"] & 1:
                        ipr.link("set", index=index, state="up")
                    return False
                ipr.link("del", index=index)
            ipr.link("add", ifname=plan.name, kind="bridge")
            index = ipr.link_lookup(ifname=plan.name)[0]
            ipr.link("set", index=index, mtu=plan.mtu)
            ipr.addr(
                "add",
                index=index,
                address=str(plan.address.ip),
                prefixlen=plan.address.network.prefixlen,
            )
            ipr.link("set", index=index, state="up")
            return True

        return self._call(f"setting up bridge {plan.name}", ensure)

    def delete_link(self, ifname: str) -> None:
        def delete(ipr: Any) -> None:
            found = ipr.link_lookup(ifname=ifname)
            if found:
                ipr.link("del", index=found[0])

        self._call(f"deleting {ifname}", delete)

    # -- endpoints -----------------------------------------------------------------------

    def create_endpoint(self, plan: EndpointPlan) -> Path:
        """Named netns with `eth0` (address, default route) and `lo` up; the host end of the
        veth on the bridge with hairpin on. Returns the netns path. Undone on failure."""
        path = NETNS_DIR / plan.netns_name
        try:
            _in_new_netns(path, functools.partial(_configure_inside, plan))

            def attach(ipr: Any) -> None:
                index = ipr.link_lookup(ifname=plan.host_veth)[0]
                bridge = ipr.link_lookup(ifname=plan.bridge)
                if not bridge:
                    raise NetworkError(f"bridge {plan.bridge} does not exist")
                ipr.link("set", index=index, master=bridge[0], state="up")
                # Hairpin lets a container reach itself through a published port.
                ipr.brport("set", index=index, mode=1)

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
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link(
            "add",
            ifname=CONTAINER_IFNAME,
            kind="veth",
            mtu=plan.mtu,
            peer={"ifname": plan.host_veth, "net_ns_fd": host_ns_fd, "mtu": plan.mtu},
        )
        eth0 = ipr.link_lookup(ifname=CONTAINER_IFNAME)[0]
        ipr.addr(
            "add",
            index=eth0,
            address=str(plan.address.ip),
            prefixlen=plan.address.network.prefixlen,
        )
        ipr.link("set", index=eth0, state="up")
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        ipr.route("add", dst="0.0.0.0/0", gateway=str(plan.gateway))


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
