from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterator

import pytest

from ocirt.errors import CorruptLayer, DigestMismatch
from ocirt.image.content.pipeline import LayerStream, UnpackLimits
from ocirt.image.manifest import Compression
from ocirt.image.reference import Digest


def sha(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def a_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("f")
        payload = os.urandom(5000)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def stream(blob: bytes, tar: bytes, compression: Compression, **kw: object) -> LayerStream:
    args: dict[str, object] = {
        "digest": sha(blob),
        "size": len(blob),
        "diff_id": sha(tar),
        "compression": compression,
        "what": "test layer",
    }
    args.update(kw)
    return LayerStream(chunks(blob), **args)  # type: ignore[arg-type]


def test_multi_member_gzip_round_trip_and_progress() -> None:
    tar = a_tar()
    half = len(tar) // 2
    blob = gzip.compress(tar[:half]) + gzip.compress(tar[half:])
    seen: list[int] = []
    s = stream(blob, tar, Compression.GZIP, progress=seen.append)
    assert s.read(len(tar) * 2) + s.read() == tar
    s.finish()
    assert seen[-1] == len(blob)


def test_wrong_digest_size_diffid_and_truncation() -> None:
    tar = a_tar()
    blob = gzip.compress(tar)
    with pytest.raises(
        DigestMismatch, match=f"digest mismatch for {sha(b'other')}: got {sha(blob)}"
    ):
        stream(blob, tar, Compression.GZIP, digest=sha(b"other")).finish()
    with pytest.raises(DigestMismatch, match="larger than"):
        stream(blob, tar, Compression.GZIP, size=10).finish()
    with pytest.raises(DigestMismatch, match="DiffID"):
        stream(blob, tar, Compression.GZIP, diff_id=sha(b"x")).finish()
    cut = blob[: len(blob) // 2]
    with pytest.raises(CorruptLayer):
        stream(cut, tar, Compression.GZIP).finish()
    with pytest.raises(CorruptLayer):
        stream(b"not gzip at all", tar, Compression.GZIP).finish()


def test_bounded_output_per_read_for_a_compression_bomb() -> None:
    bomb_tar = b"\0" * (64 << 20)
    blob = gzip.compress(bomb_tar)
    s = stream(blob, bomb_tar, Compression.GZIP)
    assert len(s.read(4096)) <= 4096
    s.finish()


def test_zstd_layers() -> None:
    zstandard = pytest.importorskip("zstandard")
    tar = a_tar()
    blob = zstandard.ZstdCompressor().compress(tar[:100]) + zstandard.ZstdCompressor().compress(
        tar[100:]
    )
    s = stream(blob, tar, Compression.ZSTD)
    assert s.read(1 << 20) + s.read() == tar
    s.finish()


class FlippingCipher:
    """Stands in for ocicrypt's LayerCipher: decrypts by XOR, fails finalize on demand."""

    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def update(self, chunk: bytes) -> bytes:
        return bytes(b ^ 0x5A for b in chunk)

    def finalize(self) -> None:
        if not self.ok:
            raise DigestMismatch("hmac")


def test_digest_is_over_the_encrypted_bytes_then_decrypt() -> None:
    tar = a_tar()
    plain_blob = gzip.compress(tar)
    encrypted = bytes(b ^ 0x5A for b in plain_blob)
    s = stream(encrypted, tar, Compression.GZIP, cipher=FlippingCipher(True))
    s.finish()
    with pytest.raises(DigestMismatch, match="hmac"):
        stream(encrypted, tar, Compression.GZIP, cipher=FlippingCipher(False)).finish()


@pytest.mark.parametrize("where", [0.1, 0.5, 0.99])
def test_a_tampered_blob_is_named_a_digest_mismatch_not_bad_data(where: float) -> None:
    """A flipped byte breaks the gzip stream (or its CRC) before the digest is checked
    at the end; the rest of the blob is still hashed so the error names the mismatch."""
    tar = a_tar()
    blob = gzip.compress(tar, mtime=0)
    tampered = bytearray(blob)
    tampered[int(len(blob) * where)] ^= 0xFF
    s = LayerStream(
        chunks(bytes(tampered)),
        digest=sha(blob),
        size=len(blob),
        diff_id=sha(tar),
        compression=Compression.GZIP,
        what="test layer",
    )
    with pytest.raises(DigestMismatch) as caught:
        while s.read(1000):  # the tar reader stops reading at the first error
            pass
        s.finish()
    assert caught.value.message == (
        f"test layer: digest mismatch for {sha(blob)}: got {sha(bytes(tampered))}"
    )


def test_blame_digest_leaves_an_intact_blob_s_own_error() -> None:
    tar = a_tar()
    blob = gzip.compress(tar)
    s = stream(blob, tar, Compression.GZIP)
    s.read(100)
    s.blame_digest(CorruptLayer("test layer: bad tar header"))  # the blob is intact
    s.finish()


def test_unpack_limits_ratio_floor_and_cap() -> None:
    limits = UnpackLimits(ratio=10, floor=1000, cap=50_000)
    assert limits.for_blob(10) == 1000  # a tiny layer may inflate up to the floor
    assert limits.for_blob(2000) == 20_000
    assert limits.for_blob(1_000_000) == 50_000
    with pytest.raises(ValueError):
        UnpackLimits(ratio=0)


def test_a_layer_that_inflates_beyond_its_limit_is_refused() -> None:
    bomb_tar = b"\0" * (4 << 20)
    blob = gzip.compress(bomb_tar)
    limit = UnpackLimits(ratio=100, floor=0).for_blob(len(blob))
    assert limit < len(bomb_tar)
    s = stream(blob, bomb_tar, Compression.GZIP, max_unpacked=limit)
    with pytest.raises(CorruptLayer, match="refused as a decompression bomb"):
        while s.read(1 << 16):
            pass
    fits = stream(blob, bomb_tar, Compression.GZIP, max_unpacked=len(bomb_tar))
    assert len(fits.read(1 << 30) + fits.read()) == len(bomb_tar)
    fits.finish()
