"""Fixtures of the bridge-network suite: a private bridge per test on each firewall back end,
real runc containers joined to it, and a "remote host" netns.

Everything made here is removed at teardown, even when the test fails. Traffic stays on this
machine: every address used is on a bridge, veth or netns a fixture created.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocirt.network.bridge import Attachment, BridgeNetwork
from ocirt.network.firewall import Backend
from ocirt.network.settings import BridgeOptions
from tests.support.runc import RuncForTests

from .net_helpers import (
    HERE,
    Container,
    Net,
    Remote,
    free_subnets,
    scrub,
    write_bundle,
)


@pytest.fixture(params=[Backend.IPTABLES, Backend.NFTABLES], ids=["iptables", "nftables"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_network(backend: Backend, tmp_path: Path) -> Iterator[Callable[..., Net]]:
    made: list[Net] = []

    def make(**options: object) -> Net:
        name = f"oct{uuid.uuid4().hex[:6]}"
        subnet = free_subnets(1)[0]
        state = tmp_path / f"state-{name}"
        opts = BridgeOptions(name=name, ip4=f"{subnet.network_address + 1}/24", **options)  # type: ignore[arg-type]
        network = BridgeNetwork(opts, state, backend)
        net = Net(network, name, subnet, state, backend)
        made.append(net)
        network.setup()
        return net

    try:
        yield make
    finally:
        for net in made:
            scrub(net)


@pytest.fixture
def network(make_network: Callable[..., Net]) -> Net:
    return make_network()


@pytest.fixture(scope="session")
def udptool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("udptool") / "udptool"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(HERE / "udptool.c")], check=True)
    return out


@pytest.fixture
def run_container(
    busybox_rootfs: Path, runc_root: Path, tmp_path: Path, udptool: Path
) -> Iterator[Callable[..., Container]]:
    """Start a real runc container joined to an attachment made by the caller."""
    runc = RuncForTests(runc_root)
    started: list[str] = []

    def run(attachment: Attachment, args: list[str], hostname: str = "ctr") -> Container:
        bundle = tmp_path / f"bundle-{attachment.container_id}"
        bundle.mkdir()
        rootfs = bundle / "rootfs"
        shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
        shutil.copy(udptool, rootfs / "bin" / "udptool")
        write_bundle(bundle, rootfs, args, attachment, hostname)
        runc.create(attachment.container_id, bundle)
        started.append(attachment.container_id)
        runc.start(attachment.container_id)
        return Container(attachment.container_id, attachment, runc)

    try:
        yield run
    finally:
        for cid in started:
            subprocess.run(
                ["runc", "--root", str(runc_root), "delete", "-f", cid],
                capture_output=True,
                check=False,
            )


@pytest.fixture
def remote_host() -> Iterator[Remote]:
    tag = uuid.uuid4().hex[:6]
    name, host_if, peer_if = f"octr-{tag}", f"octh{tag}", f"octp{tag}"
    subnet = free_subnets(1)[0]
    host_ip, peer_ip = subnet.network_address + 1, subnet.network_address + 2

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        ip("netns", "add", name)
        ip("link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", name)
        ip("addr", "add", f"{host_ip}/24", "dev", host_if)
        ip("link", "set", host_if, "up")
        ip("-n", name, "addr", "add", f"{peer_ip}/24", "dev", peer_if)
        ip("-n", name, "link", "set", peer_if, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "route", "add", "default", "via", str(host_ip))
        yield Remote(Path("/var/run/netns") / name, str(host_ip), str(peer_ip))
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
