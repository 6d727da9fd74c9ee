"""One container-id rule for every place an id becomes a name (mounts/<id>, netns, rules)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from ocirt.config.ids import check_container_id
from ocirt.errors import InvalidArgument
from ocirt.image.content.store import ContentStore
from ocirt.image.rootfs.snapshot import Snapshotter
from ocirt.network.plan import endpoint_plan, netns_name

GOOD = ["c1", "0f8e2b1c-3a4d-4e5f-9a0b-1c2d3e4f5a6b", "web.1_x", "a" * 128]
BAD = ["", ".", "..", "-rf", "-", ".hidden", "_x", "a/b", "a b", "é", "\uff431", "a" * 129, "c1\n"]


@pytest.mark.parametrize("container_id", GOOD)
def test_plain_names_pass(container_id: str) -> None:
    assert check_container_id(container_id) == container_id


@pytest.mark.parametrize("container_id", BAD)
def test_anything_else_is_refused(container_id: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid container id"):
        check_container_id(container_id)


@pytest.mark.parametrize("container_id", ["-rf", "é"])
def test_both_users_refuse_what_the_rule_refuses(tmp_path: Path, container_id: str) -> None:
    # The network's own check once let a leading "-" and non-ASCII letters through.
    with pytest.raises(InvalidArgument):
        netns_name("kanto-cm0", container_id)
    with pytest.raises(InvalidArgument):
        endpoint_plan(
            "kanto-cm0",
            container_id,
            1500,
            IPv4Interface("172.17.0.2/16"),
            IPv4Address("172.17.0.1"),
        )
    snapshots = Snapshotter(ContentStore(tmp_path), use_overlay=False)
    with pytest.raises(InvalidArgument):
        snapshots.prepare(container_id, ())
    with pytest.raises(InvalidArgument):
        snapshots.release(container_id)
    assert sorted(p.name for p in (tmp_path / "mounts").iterdir()) == []
