"""Bridge settings from Kanto's keys, and the pure choice of a free subnet."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from ocirt.errors import InvalidArgument
from ocirt.network.settings import (
    BridgeOptions,
    HostRoute,
    choose_subnet,
    options_from_kanto,
    resolve,
)


def route(dst: str, dev: str = "eth0") -> HostRoute:
    return HostRoute(IPv4Network(dst), dev)


def test_defaults_follow_kanto() -> None:
    opts = options_from_kanto({})
    assert (opts.name, opts.mtu, opts.icc, opts.ip_tables, opts.ip_masq) == (
        "kanto-cm0",
        1500,
        True,
        True,
        True,
    )


def test_default_subnet_is_172_29() -> None:
    s = resolve(BridgeOptions(), [route("0.0.0.0/0"), route("192.0.2.0/24")])
    assert s.bridge_address == IPv4Interface("172.29.0.1/16")
    assert s.pool == IPv4Network("172.29.0.0/16")
    assert s.gateway == IPv4Address("172.29.0.1")


def test_a_routed_default_subnet_moves_to_a_free_pool() -> None:
    routes = [route("172.29.5.0/24"), route("172.17.0.0/16", "docker0")]
    assert choose_subnet(routes, "kanto-cm0") == IPv4Network("172.18.0.0/16")


def test_routes_on_our_own_bridge_do_not_count() -> None:
    assert choose_subnet([route("172.29.0.0/16", "kanto-cm0")], "kanto-cm0") == IPv4Network(
        "172.29.0.0/16"
    )


def test_all_pools_taken_is_an_error() -> None:
    with pytest.raises(InvalidArgument):
        choose_subnet([route("172.16.0.0/12"), route("192.168.0.0/16")], "br")


def test_ip4_fcidr4_gwip4_are_honoured() -> None:
    s = resolve(
        options_from_kanto(
            {"ip4": "10.199.0.1/24", "fcidr4": "10.199.0.128/25", "gwip4": "10.199.0.1"}
        ),
        [],
    )
    assert s.subnet == IPv4Network("10.199.0.0/24")
    assert s.pool == IPv4Network("10.199.0.128/25")
    assert s.gateway == IPv4Address("10.199.0.1")


def test_fcidr4_alone_sets_the_subnet() -> None:
    s = resolve(BridgeOptions(fcidr4="10.50.0.0/24"), [])
    assert s.bridge_address == IPv4Interface("10.50.0.1/24")


@pytest.mark.parametrize(
    "raw",
    [
        {"ip4": "10.199.0.1"},
        {"ip4": "10.199.0.0/24"},
        {"ip4": "bogus/24"},
        {"ip4": "10.199.0.1/24", "fcidr4": "10.1.0.0/24"},
        {"ip4": "10.199.0.1/24", "gwip4": "10.1.0.1"},
        {"ip4": "10.199.0.1/24", "gwip4": "10.199.0.255"},
        {"fcidr4": "nonsense"},
    ],
)
def test_bad_addresses_are_rejected(raw: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        resolve(options_from_kanto(raw), [])


@pytest.mark.parametrize(
    "raw",
    [
        {"mtu": "1500"},
        {"mtu": 10},
        {"icc": "yes"},
        {"name": "a-name-longer-than-15"},
        {"unknown": 1},
        {"enable_ip6": True},
        {"ip4": 5},
    ],
)
def test_bad_keys_are_rejected(raw: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        options_from_kanto(raw)
