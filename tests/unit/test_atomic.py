"""Atomic writes and removals: a crash at any point leaves the old or the new content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyfakefs.fake_filesystem_unittest import Patcher

from ocirt import atomic
from ocirt.atomic import (
    TEMP_PREFIX,
    Durability,
    make_dir_durable,
    purge_leftovers,
    remove_tree,
    write_atomic,
)


@pytest.fixture
def fs_root() -> object:
    with Patcher() as patcher:
        assert patcher.fs is not None
        patcher.fs.create_dir("/data")
        yield patcher.fs


def test_write_replaces_content(fs_root: object) -> None:
    path = Path("/data/config.json")
    write_atomic(path, "old")
    write_atomic(path, b"new")
    assert path.read_text() == "new"
    assert os.listdir("/data") == ["config.json"]


@pytest.mark.parametrize("failing", ["fsync", "replace", "write"])
def test_a_crash_mid_write_leaves_the_old_file(
    fs_root: object, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = Path("/data/config.json")
    write_atomic(path, "old")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(5, "simulated crash")

    monkeypatch.setattr(atomic.os, failing, boom)
    with pytest.raises(OSError):
        write_atomic(path, "new content that never lands")
    monkeypatch.undo()
    assert path.read_text() == "old"
    # The temp file is removed when the writer survives; a killed writer leaves one that
    # purge_leftovers deletes.
    assert os.listdir("/data") == ["config.json"]


def test_a_killed_writer_leaves_a_temp_file_that_is_purged(fs_root: object) -> None:
    path = Path("/data/config.json")
    write_atomic(path, "old")
    # What a SIGKILL between write and rename leaves behind.
    Path(f"/data/{TEMP_PREFIX}config.json.1234abcd").write_text("half")
    removed = purge_leftovers(Path("/data"))
    assert [p.name for p in removed] == [f"{TEMP_PREFIX}config.json.1234abcd"]
    assert os.listdir("/data") == ["config.json"]
    assert path.read_text() == "old"


def test_remove_tree_and_leftover_trash(fs_root: object) -> None:
    Path("/data/c1/bundle").mkdir(parents=True)
    Path("/data/c1/bundle/x").write_text("x")
    remove_tree(Path("/data/c1"))
    assert os.listdir("/data") == []
    remove_tree(Path("/data/absent"))
    # A crash after the rename leaves a trash directory; a later purge finishes the job.
    Path(f"/data/{atomic.TRASH_PREFIX}c2.abcd/sub").mkdir(parents=True)
    purge_leftovers(Path("/data"))
    assert os.listdir("/data") == []


@pytest.mark.parametrize(
    ("durability", "expected"),
    [
        (Durability.FULL, ["file", "dir:/data"]),
        (Durability.CONTENT, ["file"]),
        (Durability.CRASH, []),
    ],
)
def test_durability_decides_which_fsyncs_happen(
    fs_root: object, monkeypatch: pytest.MonkeyPatch, durability: Durability, expected: list[str]
) -> None:
    path = Path("/data/config.json")
    write_atomic(path, "old")
    calls: list[str] = []
    real_fsync = os.fsync

    def file_sync(fd: int) -> None:
        calls.append("file")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", file_sync)
    monkeypatch.setattr(atomic, "fsync_dir", lambda p: calls.append(f"dir:{p}"))
    write_atomic(path, "new", durability=durability)
    assert path.read_text() == "new"
    assert calls == expected
    # The data is fsynced before the rename whenever it is fsynced at all: a reader after
    # a power cut then finds the old or the new content, never an empty file.
    assert os.listdir("/data") == ["config.json"]


def test_make_dir_durable_syncs_the_parent_only_for_a_new_directory(
    fs_root: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(atomic, "fsync_dir", lambda p: synced.append(str(p)))
    make_dir_durable(Path("/data/a"))
    make_dir_durable(Path("/data/a"))
    assert Path("/data/a").is_dir()
    assert synced == ["/data"]


def test_remove_tree_removes_a_symlink_or_file_without_following_it(fs_root: object) -> None:
    Path("/data/target").mkdir()
    Path("/data/target/keep").write_text("k")
    Path("/data/link").symlink_to("/data/target")
    Path("/data/file").write_text("f")
    remove_tree(Path("/data/link"))
    remove_tree(Path("/data/file"))
    assert os.listdir("/data") == ["target"]
    assert Path("/data/target/keep").read_text() == "k"
    # A trash entry that is a file (a crash after renaming one) is purged too.
    Path(f"/data/{atomic.TRASH_PREFIX}f.abcd").write_text("x")
    purge_leftovers(Path("/data"))
    assert os.listdir("/data") == ["target"]


def test_make_private_takes_back_modes_and_leaves_symlinks(tmp_path: Path) -> None:
    from ocirt.atomic import PRIVATE_DIR, PRIVATE_FILE, make_private, make_private_dir

    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "config.json").write_text("{}")
    (home / "config.json").chmod(0o644)
    outside = tmp_path / "outside"
    outside.write_text("")
    outside.chmod(0o644)
    (home / "link").symlink_to(outside)
    make_private_dir(home)
    for name in ("config.json", "link", "absent"):
        make_private(home / name, PRIVATE_FILE)
    assert home.stat().st_mode & 0o7777 == PRIVATE_DIR
    assert (home / "config.json").stat().st_mode & 0o7777 == PRIVATE_FILE
    assert outside.stat().st_mode & 0o7777 == 0o644  # a symlink's target is not ours
    make_private_dir(tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").stat().st_mode & 0o7777 == PRIVATE_DIR
