"""Snapshots and container root filesystems, in a temp dir.

Mounting needs root, so the overlay paths run against a recording stand-in for
`ocirt.native` (what would be mounted, and how each mount failure is handled); the copy
fallback (flatten) runs for real.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocirt import native
from ocirt.errors import ImageError, InvalidArgument
from ocirt.image.content.store import ContentStore
from ocirt.image.reference import Digest
from ocirt.image.rootfs import snapshot
from ocirt.image.rootfs.snapshot import Snapshotter, create_snapshot, flatten


def dg(text: str) -> Digest:
    return Digest("sha256", hashlib.sha256(text.encode()).hexdigest())


@dataclass
class FakeMounts:
    """Records mount(2)/umount(2) calls; `fail` maps a call to the errno it fails with."""

    mounts: list[tuple[str, str, str]] = field(default_factory=list)
    umounts: list[tuple[str, int]] = field(default_factory=list)
    fail: dict[str, list[int]] = field(default_factory=dict)
    MNT_DETACH: int = native.MNT_DETACH

    def _maybe_fail(self, call: str) -> None:
        queued = self.fail.get(call)
        if queued:
            code = queued.pop(0)
            raise OSError(code, os.strerror(code))

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        self._maybe_fail("mount")
        self.mounts.append((fstype, target, data))

    def umount(self, target: str, flags: int = 0) -> None:
        self._maybe_fail("umount")
        self.umounts.append((target, flags))


@pytest.fixture
def mounts(monkeypatch: pytest.MonkeyPatch) -> FakeMounts:
    fake = FakeMounts(fail={"umount": [errno.EINVAL] * 10})  # nothing is mounted: EINVAL
    monkeypatch.setattr(snapshot, "native", fake)
    return fake


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "images")


def make_snapshot(store: ContentStore, name: str, files: dict[str, str]) -> Digest:
    chain = dg(name)

    def fill(tmp: Path) -> None:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)

    create_snapshot(store, chain, fill)
    return chain


# ---- create_snapshot ----


def test_a_snapshot_counts_only_once_filled(store: ContentStore) -> None:
    chain = make_snapshot(store, "base", {"etc/os-release": "ocirt"})
    assert store.has_snapshot(chain)
    assert (store.snapshot_path(chain) / "etc/os-release").read_text() == "ocirt"
    assert os.listdir(store.root / "snapshots" / ".tmp") == []


def test_a_failed_fill_leaves_nothing(store: ContentStore) -> None:
    def fill(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise ImageError("layer is corrupt")

    with pytest.raises(ImageError, match="corrupt"):
        create_snapshot(store, dg("bad"), fill)
    assert not store.has_snapshot(dg("bad"))
    assert os.listdir(store.root / "snapshots" / ".tmp") == []


def test_a_snapshot_committed_meanwhile_by_another_puller_is_kept(store: ContentStore) -> None:
    make_snapshot(store, "same", {"who": "first"})
    path = create_snapshot(store, dg("same"), lambda tmp: (tmp / "who").write_text("second"))
    assert (path / "who").read_text() == "first"
    assert os.listdir(store.root / "snapshots" / ".tmp") == []


# ---- the copy fallback ----


def test_flatten_applies_snapshots_bottom_first(store: ContentStore, mounts: FakeMounts) -> None:
    lower = make_snapshot(store, "lower", {"etc/conf": "old", "bin/tool": "t"})
    upper = make_snapshot(store, "upper", {"etc/conf": "new", "srv/data": "d"})
    os.symlink("tool", store.snapshot_path(upper) / "link")
    os.link(store.snapshot_path(upper) / "srv/data", store.snapshot_path(upper) / "srv/hard")
    rootfs = Snapshotter(store, use_overlay=False).prepare("c1", (lower, upper))
    assert (rootfs / "etc/conf").read_text() == "new"
    assert (rootfs / "bin/tool").read_text() == "t"
    assert os.readlink(rootfs / "link") == "tool"
    assert os.stat(rootfs / "srv/data").st_ino == os.stat(rootfs / "srv/hard").st_ino
    base = store.root / "mounts" / "c1"
    assert json.loads((base / "layers.json").read_text()) == {
        "chainIDs": [str(lower), str(upper)],
        "overlay": False,
    }
    assert (base / "ready").exists()
    assert mounts.mounts == []


def test_prepare_is_idempotent(store: ContentStore, mounts: FakeMounts) -> None:
    chain = make_snapshot(store, "base", {"f": "image"})
    snapshots = Snapshotter(store, use_overlay=False)
    rootfs = snapshots.prepare("c1", (chain,))
    (rootfs / "f").write_text("changed by the container")
    assert snapshots.prepare("c1", (chain,)) == rootfs
    assert (rootfs / "f").read_text() == "changed by the container"


def test_a_missing_snapshot_is_an_image_error(store: ContentStore, mounts: FakeMounts) -> None:
    with pytest.raises(ImageError, match="pull the image again"):
        Snapshotter(store, use_overlay=False).prepare("c1", (dg("gone"),))
    assert os.listdir(store.root / "mounts") == []


def test_active_chains_and_containers_come_from_the_layer_records(
    store: ContentStore, mounts: FakeMounts
) -> None:
    a, b = make_snapshot(store, "a", {"x": "1"}), make_snapshot(store, "b", {"y": "2"})
    snapshots = Snapshotter(store, use_overlay=False)
    snapshots.prepare("c1", (a,))
    snapshots.prepare("c2", (a, b))
    broken = store.root / "mounts" / "c3"
    broken.mkdir()
    (broken / "layers.json").write_text("{not json")
    assert snapshots.active_chains() == {a, b}
    assert snapshots.containers() == ["c1", "c2", "c3"]


def test_release_removes_everything_and_is_idempotent(
    store: ContentStore, mounts: FakeMounts
) -> None:
    chain = make_snapshot(store, "base", {"f": "x"})
    snapshots = Snapshotter(store, use_overlay=False)
    rootfs = snapshots.prepare("c1", (chain,))
    snapshots.release("c1")
    snapshots.release("c1")
    assert os.listdir(store.root / "mounts") == []
    assert mounts.umounts == []  # every attempt found nothing mounted (EINVAL)
    assert not rootfs.exists()
    assert store.has_snapshot(chain)  # the image's snapshot stays


# ---- overlay ----


def test_overlay_mounts_the_snapshots_top_first(store: ContentStore, mounts: FakeMounts) -> None:
    lower = make_snapshot(store, "lower", {"a": "1"})
    upper = make_snapshot(store, "upper", {"b": "2"})
    rootfs = Snapshotter(store, use_overlay=True).prepare("c1", (lower, upper))
    base = store.root / "mounts" / "c1"
    lowers = f"{store.snapshot_path(upper)}:{store.snapshot_path(lower)}"
    assert mounts.mounts == [
        (
            "overlay",
            str(rootfs),
            f"lowerdir={lowers},upperdir={base}/upper,workdir={base}/work,index=off",
        )
    ]
    assert (base / "upper").is_dir()
    assert (base / "work").is_dir()
    assert not (base / "ready").exists()
    assert json.loads((base / "layers.json").read_text())["overlay"] is True
    assert list(rootfs.iterdir()) == []  # nothing copied


def test_overlay_options_longer_than_a_page_fall_back_to_copying(
    store: ContentStore, mounts: FakeMounts
) -> None:
    chains = tuple(make_snapshot(store, f"layer{i}", {f"f{i}": str(i)}) for i in range(60))
    rootfs = Snapshotter(store, use_overlay=True).prepare("c1", chains)
    assert mounts.mounts == []
    assert (rootfs / "f0").read_text() == "0"
    assert (rootfs / "f59").read_text() == "59"
    layers = json.loads((store.root / "mounts" / "c1" / "layers.json").read_text())
    assert layers["overlay"] is False


def test_a_failed_mount_leaves_nothing_behind(store: ContentStore, mounts: FakeMounts) -> None:
    chain = make_snapshot(store, "base", {"a": "1"})
    mounts.fail["mount"] = [errno.ENODEV]
    with pytest.raises(ImageError, match="cannot prepare rootfs of c1"):
        Snapshotter(store, use_overlay=True).prepare("c1", (chain,))
    assert os.listdir(store.root / "mounts") == []


def test_a_busy_rootfs_is_detached(store: ContentStore, mounts: FakeMounts) -> None:
    mounts.fail["umount"] = [errno.EBUSY]
    (store.root / "mounts" / "c1" / "rootfs").mkdir(parents=True)
    Snapshotter(store, use_overlay=True).release("c1")
    rootfs = str(store.root / "mounts" / "c1" / "rootfs")
    assert mounts.umounts == [(rootfs, native.MNT_DETACH)]
    assert os.listdir(store.root / "mounts") == []


def test_an_unmount_that_fails_otherwise_keeps_the_rootfs(
    store: ContentStore, mounts: FakeMounts
) -> None:
    mounts.fail["umount"] = [errno.EPERM]
    (store.root / "mounts" / "c1" / "rootfs").mkdir(parents=True)
    with pytest.raises(ImageError, match="cannot unmount rootfs of c1"):
        Snapshotter(store, use_overlay=True).release("c1")
    assert (store.root / "mounts" / "c1" / "rootfs").is_dir()


@pytest.mark.parametrize(("fails", "expected"), [([], True), ([errno.ENODEV], False)])
def test_the_overlay_probe_mounts_once_and_cleans_up(
    store: ContentStore, mounts: FakeMounts, fails: list[int], expected: bool
) -> None:
    mounts.fail["mount"] = list(fails)
    mounts.fail["umount"] = []
    snapshots = Snapshotter(store)
    assert snapshots.overlay is expected
    assert snapshots.overlay is expected  # probed once
    assert len(mounts.mounts) == (1 if expected else 0)
    assert len(mounts.umounts) == (1 if expected else 0)
    assert os.listdir(store.root / "mounts") == []


def test_container_ids_are_checked_before_any_path_is_made(
    store: ContentStore, mounts: FakeMounts
) -> None:
    snapshots = Snapshotter(store, use_overlay=False)
    for bad in ("../escape", "-x", ""):
        with pytest.raises(InvalidArgument):
            snapshots.prepare(bad, ())
    assert os.listdir(store.root / "mounts") == []


def test_flatten_onto_an_existing_tree(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    (snap / "d").mkdir(parents=True)
    (snap / "d" / "f").write_text("x")
    dest = tmp_path / "dest"
    dest.mkdir()
    flatten([snap], dest)
    assert (dest / "d" / "f").read_text() == "x"
