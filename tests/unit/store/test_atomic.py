"""Atomic writes and removals: a crash at any point leaves the old or the new content."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pyfakefs.fake_filesystem_unittest import Patcher

from ocirt.store import atomic
from ocirt.store.atomic import TEMP_PREFIX, purge_leftovers, remove_tree, write_atomic


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
