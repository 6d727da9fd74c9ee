"""Bridge mode through the manager: a private bridge made by this test, a container on it.

Traffic stays on the bridge the test creates; no firewall rules and no sysctl changes
(ip_tables, ip_forward and ip_masq are off), so nothing on the host is touched beyond
the bridge, veths and netns, which teardown removes.
"""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocirt.config.model import NetworkMode
from ocirt.config.state import Status
from ocirt.daemon.adapters import BridgeAdapter
from ocirt.errors import NotFound
from ocirt.manager.manager import Manager
from ocirt.manager.types import StopOptions
from ocirt.network.bridge import BridgeNetwork
from ocirt.network.settings import BridgeOptions
from tests.support.env import Env

from .manager_support import cfg

pytestmark = pytest.mark.integration


def _free_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    used = [
        ipaddress.ip_network(word, strict=False)
        for line in routes.splitlines()
        for word in line.split()[:1]
        if "/" in word
    ]
    while True:
        second, third = random.randint(160, 250), random.randint(0, 255)
        candidate = ipaddress.ip_network(f"10.{second}.{third}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate


@pytest.fixture
def bridge(env: Env) -> Iterator[BridgeNetwork]:
    name = f"ocm{uuid.uuid4().hex[:6]}"
    subnet = _free_subnet()
    state = env.home.parent / "net"
    options = BridgeOptions(
        name=name,
        ip4=f"{subnet.network_address + 1}/24",
        ip_tables=False,
        ip_forward=False,
        ip_masq=False,
    )
    network = BridgeNetwork(options, state)
    try:
        network.setup()
        yield network
    finally:
        # Containers go first (env teardown runs after this one, so delete them here).
        for cid in env.runc_ids():
            subprocess.run(["runc", "--root", str(env.runc_root), "delete", "-f", cid], check=False)
        network.teardown()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def bridged(env: Env, bridge: BridgeNetwork) -> Manager:
    return env.manager(network=BridgeAdapter(bridge))


def test_a_bridge_container_gets_its_address_and_files(
    env: Env, bridge: BridgeNetwork, bridged: Manager
) -> None:
    cid = bridged.create("busybox", cfg(network_mode=NetworkMode.BRIDGE), name="netted").id
    bridged.start(cid)
    attachment = bridge.attachment(cid)
    assert attachment.ip is not None and attachment.netns_path is not None
    addresses = env.exec(cid, "ip", "-4", "-o", "addr", "show", "eth0")
    assert f"inet {attachment.ip}/" in addresses
    # The gateway is the bridge this test made.
    env.exec(cid, "ping", "-c", "1", "-W", "5", str(attachment.gateway))
    assert env.exec(cid, "hostname").strip() == "netted-host"
    assert str(attachment.ip) in env.exec(cid, "cat", "/etc/hosts")
    netns = Path(str(attachment.netns_path))
    assert netns.exists()
    bridged.stop(cid, StopOptions(timeout=10))
    assert bridged.get(cid).state.status is Status.STOPPED
    # Detached at the end of the run: the netns is gone, the container is not attached.
    assert not netns.exists()
    bridged.start(cid)
    assert bridge.attachment(cid).ip is not None
    bridged.remove(cid, force=True)
    assert not netns.exists()
    with pytest.raises(NotFound):
        bridge.attachment(cid)


def test_host_mode_through_the_bridge_adapter(env: Env, bridged: Manager) -> None:
    cid = bridged.create("busybox", cfg(extra_hosts=("db:10.1.2.3",))).id
    bridged.start(cid)
    assert "10.1.2.3" in env.exec(cid, "cat", "/etc/hosts")
    # Host mode: the host's network namespace.
    inside = env.exec(cid, "readlink", "/proc/self/ns/net").strip()
    assert inside == os.readlink("/proc/self/ns/net")
