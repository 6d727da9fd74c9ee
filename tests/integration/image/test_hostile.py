"""Hostile and broken layers are refused, nothing lands outside the rootfs, and nothing
half-written counts in the store. Images come from OCI layouts built byte by byte
(hack/mkimage.py) and go through the same pipeline as a pull; one test tampers with a
blob inside the real registry's storage."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
import tarfile
import zlib
from pathlib import Path

import pytest

from ocirt.errors import CorruptLayer, DigestMismatch, ImageError, UnsafeLayer
from ocirt.image.reference import parse_digest
from ocirt.image.registry.auth import RegistryAccess
from ocirt.image.service import ImageService

from .conftest import BuiltImage, Registry, mkimage

pytestmark = pytest.mark.integration


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A host directory that no layer may touch; it holds a victim file."""
    d = tmp_path / f"outside-{secrets.token_hex(4)}"
    d.mkdir()
    (d / "victim").write_text("intact")
    return d


def load_layers(home: Path, tmp_path: Path, layers: list[mkimage.Layer]) -> ImageService:
    layout = tmp_path / f"layout-{secrets.token_hex(4)}"
    desc = mkimage.write_image(layout, layers)
    mkimage.write_index(layout, "v1", [desc], nested=False)
    service = ImageService(home)
    service.load(layout, name="localhost/hostile")
    return service


def assert_nothing_counted(service: ImageService) -> None:
    store = service.store
    assert store.records() == []
    assert list(store.snapshots()) == []
    assert list((store.root / "snapshots" / ".tmp").iterdir()) == []
    assert list((store.root / "ingest").iterdir()) == []


def assert_untouched(outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert (outside / "victim").read_text() == "intact"


def test_dotdot_path_is_refused(home: Path, tmp_path: Path, outside: Path) -> None:
    depth = "../" * 20
    layer = mkimage.Layer(
        mkimage.tar_bytes(lambda t: mkimage.add_file(t, f"{depth}{outside}/escaped", b"x"))
    )
    with pytest.raises(UnsafeLayer, match=r"'\.\.'"):
        load_layers(home, tmp_path, [layer])
    assert_untouched(outside)
    assert_nothing_counted(ImageService(home))


def test_absolute_path_lands_inside_the_root(home: Path, tmp_path: Path, outside: Path) -> None:
    layer = mkimage.Layer(
        mkimage.tar_bytes(lambda t: mkimage.add_file(t, f"{outside}/escaped", b"inside"))
    )
    service = load_layers(home, tmp_path, [layer])
    assert_untouched(outside)
    (chain,) = service.store.records()[0].chain_ids
    inside = service.store.snapshot_path(chain) / str(outside).lstrip("/") / "escaped"
    assert inside.read_bytes() == b"inside"


@pytest.mark.parametrize("target", ["/", "../../../../../../..", "/proc/self/root"])
def test_file_through_a_symlink_to_outside_stays_inside(
    home: Path, tmp_path: Path, outside: Path, target: str
) -> None:
    def build(t: tarfile.TarFile) -> None:
        mkimage.add_entry(t, "evil", tarfile.SYMTYPE, linkname=target)
        mkimage.add_file(t, f"evil{outside}/escaped", b"x")
        mkimage.add_file(t, f"evil{outside}/victim", b"overwritten")

    try:
        service = load_layers(home, tmp_path, [mkimage.Layer(mkimage.tar_bytes(build))])
    except ImageError:
        service = ImageService(home)  # refusing is fine too; escaping is not
        assert_nothing_counted(service)
    assert_untouched(outside)


def test_hardlink_to_a_host_file_is_refused(home: Path, tmp_path: Path, outside: Path) -> None:
    def build(t: tarfile.TarFile) -> None:
        mkimage.add_entry(t, "hostdir", tarfile.SYMTYPE, linkname=str(outside))
        mkimage.add_entry(t, "stolen", tarfile.LNKTYPE, linkname=f"{outside}/victim", mode=0o644)
        mkimage.add_entry(t, "stolen2", tarfile.LNKTYPE, linkname="hostdir/victim", mode=0o644)

    links_before = os.stat(outside / "victim").st_nlink
    with pytest.raises(CorruptLayer, match="hard link"):
        load_layers(home, tmp_path, [mkimage.Layer(mkimage.tar_bytes(build))])
    assert os.stat(outside / "victim").st_nlink == links_before
    assert_untouched(outside)
    assert_nothing_counted(ImageService(home))


@pytest.mark.parametrize("via_symlink", [False, True])
def test_whiteout_naming_something_outside(
    home: Path, tmp_path: Path, outside: Path, via_symlink: bool
) -> None:
    def build(t: tarfile.TarFile) -> None:
        if via_symlink:
            mkimage.add_entry(t, "up", tarfile.SYMTYPE, linkname=str(outside))
            mkimage.add_file(t, "up/.wh.victim", b"")
            mkimage.add_file(t, "up/.wh..wh..opq", b"")
        else:
            mkimage.add_file(t, f"{'../' * 20}{outside}/.wh.victim", b"")

    base = mkimage.Layer(mkimage.tar_bytes(lambda t: mkimage.add_file(t, "a", b"a")))
    with contextlib.suppress(UnsafeLayer, CorruptLayer):
        load_layers(home, tmp_path, [base, mkimage.Layer(mkimage.tar_bytes(build))])
    assert_untouched(outside)


def test_blob_digest_mismatch(home: Path, tmp_path: Path) -> None:
    tar = mkimage.tar_bytes(lambda t: mkimage.add_file(t, "f", b"real"))
    forged = gzip.compress(mkimage.tar_bytes(lambda t: mkimage.add_file(t, "f", b"fake")), mtime=0)
    with pytest.raises(
        DigestMismatch, match=f"digest mismatch for .*: got {mkimage.sha256(forged)}"
    ):
        load_layers(home, tmp_path, [mkimage.Layer(tar, blob_override=forged)])
    assert_nothing_counted(ImageService(home))


def test_diff_id_mismatch(home: Path, tmp_path: Path) -> None:
    tar = mkimage.tar_bytes(lambda t: mkimage.add_file(t, "f", b"real"))
    lie = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch, match="DiffID"):
        load_layers(home, tmp_path, [mkimage.Layer(tar, diff_id=lie)])
    assert_nothing_counted(ImageService(home))


def test_truncated_gzip(home: Path, tmp_path: Path) -> None:
    tar = mkimage.tar_bytes(lambda t: mkimage.add_file(t, "f", os.urandom(200_000)))
    full = gzip.compress(tar, mtime=0)

    class Truncated(mkimage.Layer):
        def blob(self) -> bytes:
            return full[: len(full) // 2]

    with pytest.raises(CorruptLayer):
        load_layers(home, tmp_path, [Truncated(tar)])
    assert_nothing_counted(ImageService(home))


def test_tampered_blob_in_registry_is_detected_and_not_kept(
    registry: Registry, busybox_image: BuiltImage, home: Path, tmp_path: Path
) -> None:
    layout = tmp_path / "tamper"
    payload = os.urandom(50_000)
    layer = mkimage.Layer(mkimage.tar_bytes(lambda t: mkimage.add_file(t, "data", payload)))
    desc = mkimage.write_image(layout, [layer])
    mkimage.write_index(layout, "v1", [desc], nested=False)
    name = f"test/tamper{secrets.token_hex(3)}"
    registry.push(layout, "v1", f"{name}:v1")
    blob_hex = mkimage.sha256(layer.blob()).split(":")[1]
    data_file = registry.storage / "blobs" / "sha256" / blob_hex[:2] / blob_hex / "data"
    raw = bytearray(data_file.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, different content
    data_file.write_bytes(bytes(raw))

    service = ImageService(home, RegistryAccess(insecure=frozenset({registry.host})))
    # Not "bad compressed data: CRC": the flipped byte breaks the gzip stream before the
    # digest can be checked at its end, and a tampered blob must be named as such.
    with pytest.raises(DigestMismatch) as caught:
        service.pull(f"{registry.host}/{name}:v1")
    assert caught.value.message.endswith(
        f"digest mismatch for sha256:{blob_hex}: got {mkimage.sha256(bytes(raw))}"
    )
    assert_nothing_counted(service)
    assert not service.store.has_blob(parse_digest(f"sha256:{blob_hex}"))


@pytest.fixture(scope="module")
def gzip_bomb() -> tuple[bytes, str]:
    """A ~1 MB gzip of a tar holding one 1 GiB file of zeros, made on the fly, and the
    tar's true DiffID (an honest layer in every other respect)."""
    size = 1 << 30
    header = tarfile.TarInfo("zeros")
    header.size = size
    header.mode = 0o644
    pieces = [header.tobuf(format=tarfile.PAX_FORMAT)]
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    diff = hashlib.sha256()
    out = []
    zeros = bytes(1 << 20)
    for piece in pieces:
        diff.update(piece)
        out.append(compressor.compress(piece))
    for _ in range(size // len(zeros)):
        diff.update(zeros)
        out.append(compressor.compress(zeros))
    trailer = bytes(2 * tarfile.RECORDSIZE)  # end-of-archive, a whole record
    diff.update(trailer)
    out.append(compressor.compress(trailer))
    out.append(compressor.flush())
    return b"".join(out), f"sha256:{diff.hexdigest()}"


def test_gzip_bomb_is_refused_and_nothing_is_left(
    home: Path, tmp_path: Path, gzip_bomb: tuple[bytes, str]
) -> None:
    blob, diff_id = gzip_bomb
    assert len(blob) < 2 << 20

    class Bomb(mkimage.Layer):
        def blob(self) -> bytes:
            return blob

    with pytest.raises(CorruptLayer, match="refused as a decompression bomb"):
        load_layers(home, tmp_path, [Bomb(b"", diff_id=diff_id)])
    assert_nothing_counted(ImageService(home))
    assert list((home / "images" / "blobs" / "sha256").iterdir()) == []
