"""IPAM: leases from the range, never twice, released, reconciled, persisted."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from ocirt.atomic import TEMP_PREFIX
from ocirt.errors import NetworkError
from ocirt.network.ipam import Ipam, next_free

SUBNET = IPv4Network("10.0.0.0/29")
GW = IPv4Address("10.0.0.1")


def make(tmp_path: Path, pool: IPv4Network = SUBNET) -> Ipam:
    return Ipam(tmp_path, pool, SUBNET, reserved={GW})


def test_never_the_gateway_network_or_broadcast(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    got = {ipam.lease(f"c{i}") for i in range(5)}
    assert got == {IPv4Address(f"10.0.0.{i}") for i in range(2, 7)}


def test_exhaustion_is_an_error(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    for i in range(5):
        ipam.lease(f"c{i}")
    with pytest.raises(NetworkError, match="no free address"):
        ipam.lease("one-too-many")


def test_same_container_same_address_and_no_double_lease(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    a = ipam.lease("a")
    assert ipam.lease("a") == a
    assert ipam.lease("b") != a


def test_release_frees_the_address_round_robin(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    a = ipam.lease("a")
    ipam.release("a")
    # Not reused at once (late packets), but eventually.
    assert ipam.lease("b") != a
    for i in range(3):
        ipam.lease(f"c{i}")
    assert ipam.lease("d") == a


def _persisted(state_dir: Path) -> dict[str, str]:
    leases: dict[str, str] = json.loads((state_dir / "leases.json").read_text())["leases"]
    return leases


def test_leases_survive_a_restart(tmp_path: Path) -> None:
    a = make(tmp_path).lease("a")
    again = make(tmp_path)
    assert _persisted(tmp_path) == {"a": str(a)}
    b = again.lease("b")
    assert b != a
    # The reloaded lease of "a" is held: leasing it again gives the same address.
    assert again.lease("a") == a
    assert _persisted(tmp_path) == {"a": str(a), "b": str(b)}
    assert not list(tmp_path.glob(f"{TEMP_PREFIX}*"))


def test_reconcile_releases_unknown_containers(tmp_path: Path) -> None:
    ipam = make(tmp_path)
    ipam.lease("keep")
    ipam.lease("drop")
    assert ipam.reconcile({"keep", "never-leased"}) == {"drop"}
    assert set(_persisted(tmp_path)) == {"keep"}


def test_a_changed_pool_starts_afresh(tmp_path: Path) -> None:
    make(tmp_path).lease("a")
    other = Ipam(tmp_path, IPv4Network("10.9.0.0/24"), IPv4Network("10.9.0.0/24"), ())
    # No lease of the old range is kept: "a" gets an address of the new one.
    assert other.lease("a") in IPv4Network("10.9.0.0/24")
    assert other.reconcile(set()) == {"a"}


def test_a_malformed_file_is_reported_and_leases_start_empty(tmp_path: Path) -> None:
    (tmp_path / "leases.json").write_text("[1, 2")
    ipam = make(tmp_path)
    assert ipam.damage is not None and "leases.json" in ipam.damage
    assert ipam.leases() == {}


def test_restore_keeps_one_container_per_pool_address_and_skips_those_in_use(
    tmp_path: Path,
) -> None:
    (tmp_path / "leases.json").write_text('{"leases": ')
    ipam = make(tmp_path)
    kept = ipam.restore(
        {
            "a": IPv4Address("10.0.0.3"),
            "b": IPv4Address("10.0.0.3"),  # the same address: the first keeps it
            "gw": GW,  # reserved
            "far": IPv4Address("10.9.9.9"),  # outside the pool
        },
        in_use={IPv4Address("10.0.0.4"), IPv4Address("10.0.0.3")},
    )
    assert kept == {"a": IPv4Address("10.0.0.3")}
    assert ipam.damage is None
    assert json.loads((tmp_path / "leases.json").read_text())["leases"] == {"a": "10.0.0.3"}
    # After the highest kept address, skipping one seen in use on the bridge.
    assert ipam.lease("new") == IPv4Address("10.0.0.5")
    assert ipam.lease("a") == IPv4Address("10.0.0.3")


def test_next_free_respects_a_smaller_pool() -> None:
    pool = IPv4Network("10.0.0.4/30")
    assert next_free(pool, SUBNET, set(), None) == IPv4Address("10.0.0.4")
    taken = {IPv4Address("10.0.0.4"), IPv4Address("10.0.0.5"), IPv4Address("10.0.0.6")}
    # 10.0.0.7 is the subnet's broadcast address.
    assert next_free(pool, SUBNET, taken, None) is None
