"""Writing the /etc files: atomic when new, in place (same inode) when they exist."""

from __future__ import annotations

from pathlib import Path

from ocirt.atomic import TEMP_PREFIX
from ocirt.network.files import rewrite_in_place, write_etc_files


def test_files_are_written(tmp_path: Path) -> None:
    files = write_etc_files(tmp_path / "c1", "hosts\n", "resolv\n", "name\n")
    assert files.hosts.read_text() == "hosts\n"
    assert files.resolv_conf.read_text() == "resolv\n"
    assert files.hostname.read_text() == "name\n"
    assert not list((tmp_path / "c1").glob(f"{TEMP_PREFIX}*"))


def test_existing_files_keep_their_inode(tmp_path: Path) -> None:
    files = write_etc_files(tmp_path, "a long first version\n", "r\n", "h\n")
    inode = files.hosts.stat().st_ino
    again = write_etc_files(tmp_path, "short\n", "r2\n", "h2\n")
    assert again.hosts.stat().st_ino == inode
    assert again.hosts.read_text() == "short\n"


def test_rewrite_in_place_truncates(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("x" * 100)
    inode = path.stat().st_ino
    rewrite_in_place(path, "y\n")
    assert path.read_text() == "y\n"
    assert path.stat().st_ino == inode
