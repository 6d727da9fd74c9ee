from __future__ import annotations

import hashlib
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ocirt import atomic
from ocirt.atomic import TRASH_PREFIX
from ocirt.errors import DigestMismatch, ImageError
from ocirt.image.content import store as store_module
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


# ---- the parsed-record cache: a stat replaces read+parse while the file is unchanged ----


def _settle(store: ContentStore, ref: str) -> Path:
    """Date the record file back past the settle window, as any record a minute old."""
    path = store.root / "records" / store.record_name(ref)
    old = time.time_ns() - 10 * store_module.RECORD_SETTLE_NS
    os.utime(path, ns=(old, old))
    return path


class _CountingOpen:
    """Counts the files the store opens (the store module's `open`)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, path: Any, *args: Any, **kwargs: Any) -> Any:
        self.paths.append(str(path))
        return open(path, *args, **kwargs)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> _CountingOpen:
    counter = _CountingOpen()
    monkeypatch.setattr(store_module, "open", counter, raising=False)
    return counter


def test_an_unchanged_record_is_parsed_once_and_equals_a_cold_read(
    tmp_path: Path, opened: _CountingOpen
) -> None:
    store = ContentStore(tmp_path)
    rec = record(store, "example.org/a:1", b"layer", 1.0)
    _settle(store, rec.reference)
    first = store.get_record(rec.reference)
    assert len(opened.paths) == 1
    for _ in range(3):
        assert store.get_record(rec.reference) is first
    assert len(opened.paths) == 1
    assert first == rec == ContentStore(tmp_path).get_record(rec.reference)


def test_a_record_written_within_the_settle_window_is_read_each_time(
    tmp_path: Path, opened: _CountingOpen
) -> None:
    store = ContentStore(tmp_path)
    rec = record(store, "example.org/a:1", b"layer", 1.0)
    for _ in range(3):
        assert store.get_record(rec.reference) == rec
    assert len(opened.paths) == 3


def test_a_record_replaced_by_another_process_is_seen_at_once(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    helper = ContentStore(tmp_path)  # as the pull helper: its writes bypass our cache
    old = record(store, "example.org/a:1", b"layer", 1.0)
    _settle(store, old.reference)
    assert store.get_record(old.reference) == old
    new = replace(old, digest=dg(b"re-pulled manifest"), pulled_at=2.0)  # same size
    helper.put_record(new)
    _settle(store, old.reference)  # even once the new file is as old as the first
    assert store.get_record(old.reference) == new


def test_a_record_removed_by_another_process_is_absent_at_once(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    rec = record(store, "example.org/a:1", b"layer", 1.0)
    _settle(store, rec.reference)
    assert store.get_record(rec.reference) == rec
    assert ContentStore(tmp_path).delete_record(rec.reference)
    assert store.get_record(rec.reference) is None


def test_a_record_rewritten_in_place_is_read_again(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    rec = record(store, "example.org/a:1", b"layer", 1.0)
    path = _settle(store, rec.reference)
    assert store.get_record(rec.reference) == rec
    path.write_bytes(path.read_bytes()[:30])  # same inode, cut short
    with pytest.raises(ImageError, match="corrupt image record"):
        store.get_record(rec.reference)


def test_own_writes_and_removals_are_seen_at_once(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    rec = record(store, "example.org/a:1", b"layer", 1.0)
    _settle(store, rec.reference)
    assert store.get_record(rec.reference) == rec
    newer = replace(rec, last_used=5.0)
    store.put_record(newer)
    assert store.get_record(rec.reference) == newer
    _settle(store, rec.reference)
    assert store.get_record(rec.reference) == newer
    assert store.delete_record(rec.reference)
    assert store.get_record(rec.reference) is None
