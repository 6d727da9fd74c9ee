"""The checked byte pipeline of one layer blob. No I/O of its own: it pulls from a chunk
iterator the caller provides (network, file) and is read by the unpacker.

    raw chunks -> size + digest (over the stored, maybe encrypted bytes) -> tee to ingest
               -> decrypt (ocicrypt) -> decompress (gzip multi-member / zstd / none)
               -> DiffID hash -> tar reader

Memory stays bounded: every stage is pulled with a size, so a compression bomb never
inflates more than one read's worth; the disk too: the unpacked bytes are counted against
`UnpackLimits`, and a layer that inflates beyond them is refused. ``finish()`` drains
what the tar reader left (the end-of-archive padding) and checks size, digest, HMAC and
DiffID, in that order (docs/oci-image-notes.md §3: digest over the encrypted blob, then decrypt,
then DiffID). When the content fails earlier (bad compressed data, a bad tar), the rest
of the blob is still hashed (`blame_digest`), so a tampered blob is reported as the
digest mismatch it is.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ocirt.errors import CorruptLayer, DigestMismatch, ImageError
from ocirt.hashing import small_digest_hex
from ocirt.image.manifest import Compression
from ocirt.image.reference import Digest

_READ = 1 << 16


@dataclass(frozen=True, slots=True)
class UnpackLimits:
    """How far a layer may inflate: a gzip bomb (1 MB that unpacks to 1 GiB) is refused
    before it fills the disk. A layer may unpack to ``ratio`` times its stored size, or to
    ``floor`` bytes if that is more (tiny layers inflate a lot: an empty tar is 10 KiB of
    zeros), and never beyond ``cap``. The defaults are generous: real layers inflate 2-10
    times; only files of zeros come near gzip's limit of about 1030 times."""

    ratio: int = 100
    floor: int = 64 << 20
    cap: int = 16 << 30

    def __post_init__(self) -> None:
        if self.ratio < 1 or self.floor < 0 or self.cap < 1:
            raise ValueError(f"unpack limits must be positive: {self}")

    def for_blob(self, size: int) -> int:
        """The most bytes the unpacked tar of a ``size``-byte blob may have."""
        return min(self.cap, max(self.ratio * size, self.floor))


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Cipher(Protocol):
    """What ocicrypt.open_layer returns."""

    def update(self, chunk: bytes) -> bytes: ...
    def finalize(self) -> None: ...


class _RawReader(io.RawIOBase):
    """Stage 1: counts, hashes, tees and decrypts the stored bytes."""

    def __init__(
        self,
        source: Iterator[bytes],
        digest: Digest,
        size: int,
        what: str,
        cipher: Cipher | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        super().__init__()
        self._source = source
        self._digest = digest
        self._size = size
        self._what = what
        self._hash = hashlib.new(digest.algorithm)
        self._count = 0
        self._cipher = cipher
        self._progress = progress
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._done:
            self._pull()
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def _pull(self) -> None:
        chunk = next(self._source, None)
        if chunk is None:
            self._done = True
            return
        if not chunk:
            return
        self._count += len(chunk)
        if self._count > self._size:
            raise DigestMismatch(
                f"{self._what}: blob {self._digest} is larger than its declared {self._size} bytes"
            )
        self._hash.update(chunk)
        if self._progress is not None:
            self._progress(self._count)
        self._buffer = self._cipher.update(chunk) if self._cipher is not None else chunk

    def drain(self) -> None:
        """Read (and hash) the rest of the stored bytes; what was buffered is dropped."""
        while not self._done:
            self._pull()
            self._buffer = b""

    def check_digest(self) -> None:
        """Drain, then raise DigestMismatch unless the bytes are the blob the digest names."""
        self.drain()
        if self._count != self._size:
            raise DigestMismatch(
                f"{self._what}: blob {self._digest} has {self._count} bytes, expected {self._size}"
            )
        actual = self._hash.hexdigest()
        if actual != self._digest.hex:
            raise DigestMismatch(
                f"{self._what}: digest mismatch for {self._digest}: "
                f"got {self._digest.algorithm}:{actual}"
            )

    def verify(self) -> None:
        self.check_digest()
        if self._cipher is not None:
            self._cipher.finalize()


class LayerStream(io.RawIOBase):
    """The decompressed tar bytes of one layer, checked as they flow."""

    def __init__(
        self,
        source: Iterator[bytes],
        *,
        digest: Digest,
        size: int,
        diff_id: Digest,
        compression: Compression,
        what: str,
        cipher: Cipher | None = None,
        progress: Callable[[int], None] | None = None,
        max_unpacked: int | None = None,
    ) -> None:
        super().__init__()
        self._what = what
        self._size = size
        self._max_unpacked = max_unpacked
        self._unpacked = 0
        self._diff_id = diff_id
        self._diff_hash = hashlib.new(diff_id.algorithm)
        self._raw = _RawReader(source, digest, size, what, cipher, progress)
        buffered = io.BufferedReader(self._raw, _READ)
        self._inner: _Readable
        if compression is Compression.GZIP:
            self._inner = gzip.GzipFile(fileobj=buffered, mode="rb")
        elif compression is Compression.ZSTD:
            self._inner = _zstd_reader(buffered)
        else:
            self._inner = buffered

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(b))
        except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
            self.blame_digest(exc)
            raise CorruptLayer(f"{self._what}: bad compressed data: {exc}") from exc
        except ImageError:
            raise
        except Exception as exc:
            if type(exc).__name__ == "ZstdError":
                self.blame_digest(exc)
                raise CorruptLayer(f"{self._what}: bad zstd data: {exc}") from exc
            raise
        n = len(data)
        self._unpacked += n
        if self._max_unpacked is not None and self._unpacked > self._max_unpacked:
            raise CorruptLayer(
                f"{self._what}: unpacks to more than {self._max_unpacked} bytes from a "
                f"{self._size}-byte blob; refused as a decompression bomb"
            )
        self._diff_hash.update(data)
        b[:n] = data
        return n

    def blame_digest(self, failure: BaseException) -> None:
        """After ``failure`` downstream (bad compressed data, a bad or unsafe tar): raise
        DigestMismatch instead if the stored bytes are not the blob their digest names.

        A tampered blob is a security event, not a broken layer: the rest of the blob is
        read and hashed so that the error names the mismatch. An error while reading the
        rest (the network) leaves ``failure`` to be reported.
        """
        if isinstance(failure, DigestMismatch):
            return
        try:
            self._raw.check_digest()
        except DigestMismatch as exc:
            raise exc from failure
        except (ImageError, OSError):
            return

    def finish(self) -> None:
        """Drain the rest and check size, digest, HMAC and DiffID; raise on any mismatch."""
        while self.read(_READ):
            pass
        self._raw.verify()
        actual = self._diff_hash.hexdigest()
        if actual != self._diff_id.hex:
            raise DigestMismatch(
                f"{self._what}: uncompressed content {self._diff_id.algorithm}:{actual} "
                f"does not match DiffID {self._diff_id}"
            )


def _zstd_reader(raw: _Readable) -> _Readable:
    try:
        zstandard = importlib.import_module("zstandard")
    except ImportError as exc:
        raise ImageError("zstd-compressed layers need the 'zstandard' package") from exc
    reader: _Readable = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return reader


def verify_bytes(data: bytes, digest: Digest, what: str) -> None:
    """Check a small blob (manifest, config) held in memory. CPython's own SHA-2
    (`ocirt.hashing`): the daemon re-checks such blobs on the create path and so maps no
    OpenSSL for them; layers keep hashlib's speed."""
    actual = small_digest_hex(digest.algorithm, data)
    if actual != digest.hex:
        raise DigestMismatch(
            f"{what}: digest mismatch for {digest}: got {digest.algorithm}:{actual}"
        )


def digest_of(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())
