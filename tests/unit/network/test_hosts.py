"""hosts / resolv.conf / hostname contents and extraHosts resolution."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ocirt.errors import InvalidArgument
from ocirt.network.hosts import (
    HostFacts,
    parse_extra_hosts,
    pick_resolv_source,
    render_hostname,
    render_hosts,
    render_resolv,
    resolve_extra_hosts,
)

FACTS = HostFacts(
    bridge_ip=IPv4Address("172.29.0.1"),
    interfaces={"eth0": [IPv4Address("192.0.2.2"), IPv4Address("192.0.2.3")], "lo": []},
    containers={
        "db": [IPv4Address("172.29.0.5")],
        "twin": [IPv4Address("172.29.0.6"), IPv4Address("172.29.0.7")],
    },
)


@pytest.mark.parametrize("bad", ["nocolon", "a:b:c", ":1.2.3.4", "name:"])
def test_extra_hosts_need_exactly_one_colon(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=r"host \[.*\] is incorrectly defined"):
        parse_extra_hosts([bad])


def test_extra_hosts_resolve_like_kanto() -> None:
    parsed = parse_extra_hosts(
        [
            "gw:host_ip",
            "eth:host_ip_eth0",
            "db:container_db",
            "lit:10.1.2.3",
            "none:host_ip_lo",
            "missing:host_ip_nope",
            "ghost:container_ghost",
            "two:container_twin",
            "junk:not-an-ip",
        ]
    )
    resolved = resolve_extra_hosts(parsed, FACTS)
    assert resolved.entries == (
        ("172.29.0.1", "gw"),
        ("192.0.2.2", "eth"),
        ("172.29.0.5", "db"),
        ("10.1.2.3", "lit"),
    )
    assert len(resolved.problems) == 5


def test_host_ip_is_unknown_without_a_bridge() -> None:
    facts = HostFacts(None, {}, {})
    assert resolve_extra_hosts(parse_extra_hosts(["gw:host_ip"]), facts).entries == ()


def test_hosts_file_layout() -> None:
    text = render_hosts(IPv4Address("172.29.0.9"), "web", "corp", [("10.1.2.3", "lit")])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert lines[1] == "::1\tlocalhost ip6-localhost ip6-loopback"
    assert lines[-2] == "10.1.2.3\tlit"
    assert lines[-1] == "172.29.0.9\tweb.corp web"
    assert render_hosts(IPv4Address("172.29.0.9"), "web", "", []).endswith("172.29.0.9\tweb\n")


def test_host_mode_keeps_the_hosts_file() -> None:
    text = render_hosts(None, "", "", [("10.0.0.1", "x")], base="127.0.0.1 localhost\n")
    assert text == "127.0.0.1 localhost\n10.0.0.1\tx\n"


def test_resolv_drops_loopback_and_ipv6_in_bridge_mode() -> None:
    source = (
        "search lan\nnameserver 127.0.0.1\nnameserver ::1\nnameserver fd00::1\n"
        "nameserver 10.0.0.53\noptions ndots:2\n"
    )
    assert (
        render_resolv(source, bridge_mode=True)
        == "search lan\nnameserver 10.0.0.53\noptions ndots:2\n"
    )
    assert render_resolv(source, bridge_mode=False) == source


def test_resolv_never_falls_back_to_a_public_resolver() -> None:
    text = render_resolv("nameserver 127.0.0.53\nsearch lan\n", bridge_mode=True)
    assert "nameserver" not in text
    assert "8.8.8.8" not in text
    assert text == "search lan\n"


def test_systemd_stub_uses_the_upstream_file() -> None:
    upstream = "nameserver 10.1.1.1\n"
    assert pick_resolv_source("nameserver 127.0.0.53\n", upstream) == upstream
    assert pick_resolv_source("nameserver 127.0.0.53\n", None) == "nameserver 127.0.0.53\n"
    assert pick_resolv_source("nameserver 10.2.2.2\n", upstream) == "nameserver 10.2.2.2\n"


def test_hostname_file() -> None:
    assert render_hostname("box") == "box\n"
