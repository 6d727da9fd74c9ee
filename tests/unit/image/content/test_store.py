from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ocirt import atomic
from ocirt.atomic import TRASH_PREFIX
from ocirt.errors import DigestMismatch
from ocirt.image.content.store import ContentStore, ImageRecord, LayerRecord
from ocirt.image.manifest import Platform
from ocirt.image.reference import Digest


def dg(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def record(store: ContentStore, ref: str, layer: bytes, last_used: float) -> ImageRecord:
    manifest, config = f"m{ref}".encode(), f"c{ref}".encode()
    for blob in (manifest, config, layer):
        store.put_blob(blob, dg(blob))
    chain = dg(b"chain" + layer)
    store.snapshot_path(chain).mkdir(exist_ok=True)
    rec = ImageRecord(
        ref,
        dg(manifest),
        "m",
        dg(config),
        (LayerRecord(dg(layer), len(layer), "l", dg(layer), chain),),
        Platform("linux", "amd64"),
        last_used,
        last_used,
    )
    store.put_record(rec)
    return rec


def test_put_blob_checks_digest(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    with pytest.raises(DigestMismatch):
        store.put_blob(b"abc", dg(b"abd"))
    assert list(store.blobs()) == []


def test_ingest_resumes_and_commits(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    d = dg(b"hello world")
    ingest = store.ingest(d)
    ingest.write(b"hello ")
    ingest.close()
    again = store.ingest(d)
    assert again.offset == 6
    assert b"".join(again.read_existing()) == b"hello "
    again.write(b"world")
    assert not store.has_blob(d)
    again.commit()
    assert store.read_blob(d) == b"hello world"
    assert list((tmp_path / "ingest").iterdir()) == []


def test_records_round_trip(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    rec = record(store, "docker.io/library/a:1", b"L1", 100.0)
    assert store.get_record("docker.io/library/a:1") == rec
    assert store.get_record("docker.io/library/b:1") is None


def test_gc_keeps_in_use_and_recent_images_and_shared_content(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    old_used = record(store, "r/used:1", b"shared", 0.0)
    old_unused = record(store, "r/old:1", b"only-old", 0.0)
    recent = record(store, "r/recent:1", b"shared", 990.0)
    store.ingest(dg(b"partial")).close()

    report = store.gc({"r/used:1"}, active_chains=(), expiry=100.0, now=1000.0)

    assert report.images == ("r/old:1",)
    assert {r.reference for r in store.records()} == {"r/used:1", "r/recent:1"}
    assert not store.has_blob(old_unused.layers[0].digest)
    assert not store.has_snapshot(old_unused.layers[0].chain_id)
    assert store.has_blob(old_used.layers[0].digest) and store.has_blob(recent.config)
    assert list((tmp_path / "ingest").iterdir()) == []


def test_gc_with_expiry_disabled_keeps_images_but_drops_orphans(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    rec = record(store, "r/a:1", b"a", 0.0)
    store.put_blob(b"orphan", dg(b"orphan"))
    active = dg(b"mounted-chain")
    store.snapshot_path(active).mkdir()
    report = store.gc(set(), active_chains={active}, expiry=None, now=1e9)
    assert report.images == () and report.blobs == 1
    assert store.get_record("r/a:1") == rec
    assert store.has_snapshot(active)


def test_open_finishes_removals_a_crash_interrupted(tmp_path: Path) -> None:
    """A crash inside remove_tree leaves a renamed-aside tree: under mounts/ (a released
    container's rootfs state) and snapshots/ alike, the next open deletes it and keeps
    everything live."""
    ContentStore(tmp_path)
    live = tmp_path / "mounts" / "c1"
    live.mkdir()
    (live / "layers.json").write_text("{}")
    leftovers = [
        tmp_path / "mounts" / f"{TRASH_PREFIX}c2.1234abcd" / "rootfs",
        tmp_path / "snapshots" / f"{TRASH_PREFIX}{'a' * 64}.1234abcd",
        tmp_path / "snapshots" / ".tmp" / f"{TRASH_PREFIX}0123.1234abcd",
        # What ocirt left before remove_tree had one rule.
        tmp_path / "mounts" / ".del-c3-12345678",
    ]
    for leftover in leftovers:
        leftover.mkdir(parents=True)
        (leftover / "file").write_text("x")
    ContentStore(tmp_path)
    assert [p for p in leftovers if p.exists()] == []
    assert sorted(os.listdir(tmp_path / "mounts")) == ["c1"]
    assert (live / "layers.json").read_text() == "{}"


def test_snapshot_removal_goes_through_trash_with_the_parent_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ContentStore(tmp_path)
    chain = dg(b"chain")
    store.snapshot_path(chain).mkdir()
    (store.snapshot_path(chain) / "bin").mkdir()
    renamed: list[str] = []
    synced: list[Path] = []
    real_rename = os.rename

    def rename(src: object, dst: object) -> None:
        renamed.append(Path(str(dst)).name)
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(atomic.os, "rename", rename)
    monkeypatch.setattr(atomic, "fsync_dir", synced.append)
    report = store.gc((), (), None)
    assert report.snapshots == 1
    assert not store.has_snapshot(chain)
    assert [n.startswith(f"{TRASH_PREFIX}{chain.hex}.") for n in renamed] == [True]
    assert synced == [tmp_path / "snapshots"]
