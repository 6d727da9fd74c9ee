"""The in-root tar writer on a real temp dir (openat2 needs no root)."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirt.errors import CorruptLayer, UnsafeLayer
from ocirt.image.rootfs.unpack import WhiteoutMode, apply_layer, clean_name


def layer(build: Callable[[tarfile.TarFile], None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    buf.seek(0)
    return buf


def f(tar: tarfile.TarFile, name: str, data: bytes = b"", mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1_600_000_000
    tar.addfile(info, io.BytesIO(data))


def e(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "", mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, linkname, mode, 1_600_000_000
    tar.addfile(info)


def test_clean_name() -> None:
    assert clean_name("./a//b/./c") == ("a", "b", "c")
    assert clean_name("/abs/x") == ("abs", "x")
    assert clean_name("./") == ()
    for bad in ("../x", "a/../../x", "a/..", "x\x00y"):
        with pytest.raises(UnsafeLayer):
            clean_name(bad)


def test_entries_modes_times_and_missing_parents(tmp_path: Path) -> None:
    def build(t: tarfile.TarFile) -> None:
        f(t, "deep/er/file", b"data", 0o640)
        e(t, "dir", tarfile.DIRTYPE, mode=0o710)
        f(t, "dir/inner", b"i")
        e(t, "sym", tarfile.SYMTYPE, "/nonexistent/target")
        e(t, "hard", tarfile.LNKTYPE, "deep/er/file")
        e(t, "fifo", tarfile.FIFOTYPE, mode=0o600)

    count = apply_layer(layer(build), str(tmp_path), WhiteoutMode.OVERLAY)
    assert count == 6
    assert (tmp_path / "deep/er/file").read_bytes() == b"data"
    assert (tmp_path / "deep/er/file").stat().st_mode & 0o7777 == 0o640
    assert (tmp_path / "dir").stat().st_mode & 0o7777 == 0o710
    # Directory mtimes are set last, after their children were created.
    assert (tmp_path / "dir").stat().st_mtime == 1_600_000_000
    assert os.readlink(tmp_path / "sym") == "/nonexistent/target"
    assert (tmp_path / "hard").stat().st_ino == (tmp_path / "deep/er/file").stat().st_ino
    assert (tmp_path / "fifo").is_fifo()


def test_writes_through_symlinks_stay_in_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()

    def build(t: tarfile.TarFile) -> None:
        e(t, "up", tarfile.SYMTYPE, "../../../..")
        e(t, "abs", tarfile.SYMTYPE, "/")
        f(t, f"up{outside}/a", b"x")
        f(t, f"abs{outside}/b", b"x")

    apply_layer(layer(build), str(root), WhiteoutMode.NAIVE)
    assert list(outside.iterdir()) == []
    assert (root / str(outside).lstrip("/") / "a").read_bytes() == b"x"
    assert (root / str(outside).lstrip("/") / "b").read_bytes() == b"x"


def test_parent_through_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()

    def build(t: tarfile.TarFile) -> None:
        e(t, "escape", tarfile.SYMTYPE, str(outside / "sub"))
        f(t, "escape/a", b"x")

    with pytest.raises(CorruptLayer):
        apply_layer(layer(build), str(root), WhiteoutMode.NAIVE)
    assert list(outside.iterdir()) == []


def test_chmod_never_goes_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "host-file"
    target.write_text("h")
    target.chmod(0o600)
    root = tmp_path / "root"
    root.mkdir()

    def build(t: tarfile.TarFile) -> None:
        e(t, "x", tarfile.SYMTYPE, str(target))
        f(t, "x", b"replaced", 0o777)  # replaces the symlink; never chmods its target

    apply_layer(layer(build), str(root), WhiteoutMode.NAIVE)
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_text() == "h"
    assert not (root / "x").is_symlink()


def test_naive_whiteouts_hide_lower_layers_only(tmp_path: Path) -> None:
    def lower(t: tarfile.TarFile) -> None:
        f(t, "gone", b"1")
        e(t, "opq", tarfile.DIRTYPE)
        f(t, "opq/old", b"1")
        e(t, "tree", tarfile.DIRTYPE)
        f(t, "tree/x", b"1")

    def upper(t: tarfile.TarFile) -> None:
        f(t, "opq/new", b"2")
        f(t, "opq/.wh..wh..opq")
        f(t, ".wh.gone")
        f(t, ".wh.tree")
        f(t, "same", b"s")
        f(t, ".wh.same")  # same layer: the file stays (layer.md)

    apply_layer(layer(lower), str(tmp_path), WhiteoutMode.NAIVE)
    apply_layer(layer(upper), str(tmp_path), WhiteoutMode.NAIVE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opq", "same"]
    assert [p.name for p in (tmp_path / "opq").iterdir()] == ["new"]


def test_invalid_whiteouts_and_hardlinks(tmp_path: Path) -> None:
    with pytest.raises(CorruptLayer, match="whiteout"):
        apply_layer(layer(lambda t: f(t, "a/.wh.")), str(tmp_path), WhiteoutMode.NAIVE)
    with pytest.raises(CorruptLayer, match="hard link"):
        apply_layer(
            layer(lambda t: e(t, "h", tarfile.LNKTYPE, "/etc/passwd")),
            str(tmp_path),
            WhiteoutMode.NAIVE,
        )
    assert not (tmp_path / "h").exists()


def test_not_a_tar(tmp_path: Path) -> None:
    with pytest.raises(CorruptLayer):
        apply_layer(io.BytesIO(b"garbage" * 200), str(tmp_path), WhiteoutMode.NAIVE)
