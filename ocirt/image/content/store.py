"""The image content store under ``<home_dir>/images/``. Does I/O (files only).

Layout (every name below is a validated digest hex, never a caller's string)::

    blobs/<alg>/<hex>          committed blobs: manifests, configs, layers (as stored)
    ingest/<alg>-<hex>         partial downloads; flock-ed while written; resumable
    snapshots/<hex>            read-only unpacked layers keyed by ChainID (rootfs/snapshot.py)
    snapshots/.tmp/            snapshots being unpacked; never counted
    records/<sha256(ref)>.json one image record per reference
    mounts/<container id>/     container rootfs state (rootfs/snapshot.py)

A blob counts only once it sits under ``blobs/``: it is renamed there after its digest
was checked, and every file write is temp + fsync + rename + fsync(dir). Trees go through
`ocirt.atomic.remove_tree`; what a crash left renamed aside is purged at open.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocirt.atomic import (
    PRIVATE_FILE,
    fsync_dir,
    make_private,
    make_private_dir,
    purge_leftovers,
    remove_tree,
    write_atomic,
)
from ocirt.errors import DigestMismatch, ImageError, ImageNotFound, InvalidReference
from ocirt.hashing import sha256_hex
from ocirt.image.lru import Lru
from ocirt.image.manifest import Platform
from ocirt.image.reference import Digest, parse_digest

_CHUNK = 1 << 20

# Parsed records kept by `ContentStore.get_record`, each with the identity of the file it
# was read from, so that a stat replaces a read and a parse while the file is unchanged.
RECORD_CACHE_SIZE = 64
# A record file is trusted by its stat identity only once its mtime is this far in the
# past. A replacement keeps a new inode (the old file still exists while the temp file is
# made), but a delete then a re-create may reuse the inode; the new file then differs in
# mtime only if the two writes fall in different timestamp ticks (ext4: a jiffy; ext3
# and vfat: 1-2 s). Within this window every get reads the file (git's "racy clean").
RECORD_SETTLE_NS = 3_000_000_000

_StatKey = tuple[int, int, int, int, int]


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class LayerRecord:
    digest: Digest
    size: int
    media_type: str
    diff_id: Digest
    chain_id: Digest


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """What the store knows about one pulled or loaded image reference."""

    reference: str
    digest: Digest  # manifest digest
    media_type: str
    config: Digest
    layers: tuple[LayerRecord, ...]
    platform: Platform
    pulled_at: float
    last_used: float

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def chain_ids(self) -> tuple[Digest, ...]:
        return tuple(layer.chain_id for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": str(self.digest),
            "mediaType": self.media_type,
            "config": str(self.config),
            "layers": [
                {
                    "digest": str(la.digest),
                    "size": la.size,
                    "mediaType": la.media_type,
                    "diffID": str(la.diff_id),
                    "chainID": str(la.chain_id),
                }
                for la in self.layers
            ],
            "platform": {
                "os": self.platform.os,
                "architecture": self.platform.architecture,
                "variant": self.platform.variant,
            },
            "pulledAt": self.pulled_at,
            "lastUsed": self.last_used,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> ImageRecord:
        p = doc["platform"]
        return ImageRecord(
            reference=str(doc["reference"]),
            digest=parse_digest(doc["digest"]),
            media_type=str(doc["mediaType"]),
            config=parse_digest(doc["config"]),
            layers=tuple(
                LayerRecord(
                    parse_digest(la["digest"]),
                    int(la["size"]),
                    str(la["mediaType"]),
                    parse_digest(la["diffID"]),
                    parse_digest(la["chainID"]),
                )
                for la in doc["layers"]
            ),
            platform=Platform(str(p["os"]), str(p["architecture"]), str(p["variant"])),
            pulled_at=float(doc["pulledAt"]),
            last_used=float(doc["lastUsed"]),
        )


@dataclass(frozen=True, slots=True)
class DamagedRecord:
    """A record file that cannot be used: its file name, the reference when it could
    still be read, and why it is damaged."""

    name: str
    reference: str | None
    reason: str


_RECORD_NAME = re.compile(r"[0-9a-f]{64}\.json")


def _reference_of(doc: object) -> str | None:
    if isinstance(doc, dict) and isinstance(doc.get("reference"), str):
        return str(doc["reference"])
    return None


class Ingest:
    """A partial blob being written; exclusive across threads and processes (flock).

    ``offset`` is what an earlier, interrupted writer left: the caller re-reads those
    bytes through its checks and asks the registry for the rest.
    """

    def __init__(self, store: ContentStore, digest: Digest) -> None:
        self._store = store
        self.digest = digest
        self.path = store.root / "ingest" / f"{digest.algorithm}-{digest.hex}"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise
        self.offset = os.fstat(self._fd).st_size
        os.lseek(self._fd, 0, os.SEEK_END)

    def read_existing(self) -> Iterator[bytes]:
        """The bytes an earlier writer left, in chunks."""
        pos = 0
        while pos < self.offset:
            chunk = os.pread(self._fd, min(_CHUNK, self.offset - pos), pos)
            if not chunk:
                return
            pos += len(chunk)
            yield chunk

    def reset(self) -> None:
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self.offset = 0

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def commit(self) -> Path:
        """Move the (already verified) bytes under blobs/; the caller checked the digest."""
        os.fsync(self._fd)
        target = self._store.blob_path(self.digest)
        os.replace(self.path, target)
        fsync_dir(target.parent)
        self.close()
        return target

    def discard(self) -> None:
        if self._fd >= 0:
            self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass(frozen=True, slots=True)
class GcReport:
    images: tuple[str, ...]
    blobs: int
    snapshots: int


class ContentStore:
    """Content-addressed blobs, image records and the snapshot directories' names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("blobs/sha256", "blobs/sha512", "ingest", "snapshots/.tmp", "records"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        # Records are root's alone (an older install left them readable).
        make_private_dir(root / "records")
        for path in (root / "records").iterdir():
            make_private(path, PRIVATE_FILE)
        (root / "mounts").mkdir(exist_ok=True)
        self._purge_trash()
        # By record file name. Other processes (the pull helper, `ocirt load`) write here
        # too, so an entry counts only while the file's stat identity is the one read.
        self._records: Lru[str, tuple[_StatKey, ImageRecord]] = Lru(RECORD_CACHE_SIZE)

    # ---- blobs ----

    def blob_path(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def has_blob(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: Digest, limit: int = 64 << 20) -> bytes:
        path = self.blob_path(digest)
        try:
            with path.open("rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError as exc:
            raise ImageNotFound(f"blob {digest} is not in the store") from exc
        if len(data) > limit:
            raise ImageError(f"blob {digest} is larger than {limit} bytes")
        return data

    def iter_blob(self, digest: Digest) -> Iterator[bytes]:
        with self.blob_path(digest).open("rb") as f:
            while chunk := f.read(_CHUNK):
                yield chunk

    def put_blob(self, data: bytes, digest: Digest) -> None:
        """Store a small blob held in memory after checking its digest."""
        actual = hashlib.new(digest.algorithm, data).hexdigest()
        if actual != digest.hex:
            raise DigestMismatch(f"blob {digest} has digest {digest.algorithm}:{actual}")
        if not self.has_blob(digest):
            write_atomic(self.blob_path(digest), data)

    def ingest(self, digest: Digest) -> Ingest:
        return Ingest(self, digest)

    def blobs(self) -> Iterator[Digest]:
        for alg in ("sha256", "sha512"):
            for entry in (self.root / "blobs" / alg).iterdir():
                try:
                    yield parse_digest(f"{alg}:{entry.name}")
                except InvalidReference:
                    continue  # a temp file of write_atomic

    # ---- snapshots (directories managed by rootfs/snapshot.py) ----

    def snapshot_path(self, chain_id: Digest) -> Path:
        return self.root / "snapshots" / chain_id.hex

    def has_snapshot(self, chain_id: Digest) -> bool:
        return self.snapshot_path(chain_id).is_dir()

    def new_snapshot_dir(self) -> Path:
        path = self.root / "snapshots" / ".tmp" / os.urandom(8).hex()
        path.mkdir(mode=0o755)
        return path

    def commit_snapshot(self, tmp: Path, chain_id: Digest) -> None:
        target = self.snapshot_path(chain_id)
        try:
            os.rename(tmp, target)
        except OSError as exc:
            # Another puller committed the same ChainID first: same content, keep theirs.
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            remove_tree(tmp)
            return
        fsync_dir(target.parent)

    def snapshots(self) -> Iterator[Digest]:
        for entry in (self.root / "snapshots").iterdir():
            if entry.name.startswith("."):
                continue
            try:
                yield parse_digest(f"sha256:{entry.name}")
            except InvalidReference:
                continue

    # ---- records ----

    def _record_path(self, reference: str) -> Path:
        return self.root / "records" / self.record_name(reference)

    @staticmethod
    def record_name(reference: str) -> str:
        """The file name of a reference's record under records/."""
        return f"{sha256_hex(reference)}.json"

    def put_record(self, record: ImageRecord) -> None:
        name = self.record_name(record.reference)
        data = json.dumps(record.to_json(), sort_keys=True).encode()
        write_atomic(self.root / "records" / name, data, PRIVATE_FILE)
        self._records.pop(name)

    def get_record(self, reference: str) -> ImageRecord | None:
        """The record of ``reference``, None if there is none. Always asks the file
        system (a stat at least): a record replaced or removed by any process counts at
        once; the parse is reused while the file is the one parsed."""
        name = self.record_name(reference)
        path = self.root / "records" / name
        cached = self._records.get(name)
        if cached is not None:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                self._records.pop(name)
                return None
            if _stat_key(st) == cached[0]:
                return cached[1]
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                raw = f.read()
        except FileNotFoundError:
            self._records.pop(name)
            return None
        try:
            record = ImageRecord.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError, InvalidReference) as exc:
            raise ImageError(f"corrupt image record {path}: {exc}") from exc
        if time.time_ns() - st.st_mtime_ns >= RECORD_SETTLE_NS:
            self._records.put(name, (_stat_key(st), record))
        else:
            self._records.pop(name)
        return record

    def records(self) -> list[ImageRecord]:
        """The readable records; damaged ones are in `scan_records`."""
        return self.scan_records()[0]

    def scan_records(self) -> tuple[list[ImageRecord], list[DamagedRecord]]:
        """Every record file: the readable records (by reference) and the damaged ones,
        each with the reason (a power cut, a bad flash page). Damaged records are kept
        until removed (`delete_damaged`), so the user learns what was lost."""
        good: list[ImageRecord] = []
        damaged: list[DamagedRecord] = []
        for path in sorted((self.root / "records").glob("*.json")):
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError as exc:
                damaged.append(DamagedRecord(path.name, None, f"cannot read: {exc}"))
                continue
            try:
                doc = json.loads(raw)
            except ValueError as exc:
                damaged.append(DamagedRecord(path.name, None, f"not JSON: {exc}"))
                continue
            reference = _reference_of(doc)
            try:
                record = ImageRecord.from_json(doc)
            except (ValueError, KeyError, TypeError, InvalidReference) as exc:
                reason = f"malformed: {type(exc).__name__}: {exc}"
                damaged.append(DamagedRecord(path.name, reference, reason))
                continue
            if path.name != self._record_path(record.reference).name:
                reason = f"filed under the wrong name for {record.reference}"
                damaged.append(DamagedRecord(path.name, reference, reason))
                continue
            good.append(record)
        return sorted(good, key=lambda r: r.reference), damaged

    def delete_damaged(self, name: str) -> bool:
        """Remove the record file ``name`` (as `scan_records` reported it)."""
        if not _RECORD_NAME.fullmatch(name):
            raise ImageError(f"{name!r} is not the name of an image record")
        path = self.root / "records" / name
        self._records.pop(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        return True

    def delete_record(self, reference: str) -> bool:
        name = self.record_name(reference)
        path = self.root / "records" / name
        self._records.pop(name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(path.parent)
        return True

    # ---- garbage collection ----

    def gc(
        self,
        in_use: Iterable[str],
        active_chains: Iterable[Digest],
        expiry: float | None,
        now: float | None = None,
    ) -> GcReport:
        """Drop records no container uses once unused for ``expiry`` seconds (None keeps
        them), then every blob and snapshot that no remaining record or mount needs."""
        now = time.time() if now is None else now
        used = set(in_use)
        removed: list[str] = []
        keep = []
        for record in self.records():
            expired = expiry is not None and now - record.last_used >= expiry
            if record.reference not in used and expired:
                self.delete_record(record.reference)
                removed.append(record.reference)
            else:
                keep.append(record)
        live_blobs: set[Digest] = set()
        live_chains: set[Digest] = set(active_chains)
        for record in keep:
            live_blobs.update({record.digest, record.config})
            live_blobs.update(la.digest for la in record.layers)
            live_chains.update(record.chain_ids)
        blobs = 0
        for digest in list(self.blobs()):
            if digest not in live_blobs:
                self.blob_path(digest).unlink(missing_ok=True)
                blobs += 1
        snapshots = 0
        for chain in list(self.snapshots()):
            if chain not in live_chains:
                remove_tree(self.snapshot_path(chain))
                snapshots += 1
        self._clean_leftovers()
        return GcReport(tuple(removed), blobs, snapshots)

    def _purge_trash(self) -> None:
        """Finish the removals a crash interrupted (`atomic.remove_tree`): snapshots and
        container rootfs state (mounts/<id>) renamed aside but not yet deleted. Only
        trash: nothing live carries its prefix, so this is safe while others pull."""
        for directory in ("snapshots", "snapshots/.tmp", "mounts"):
            purge_leftovers(self.root / directory)
            # Left by ocirt before remove_tree had one rule (".del-<name>-<hex>").
            for doomed in (self.root / directory).glob(".del-*"):
                shutil.rmtree(doomed, ignore_errors=True)

    def _clean_leftovers(self) -> None:
        # Unlike trash, a temp snapshot or a partial blob may be live: only gc, which runs
        # while no import is under way, removes them.
        for tmp in (self.root / "snapshots" / ".tmp").iterdir():
            remove_tree(tmp)
        self._purge_trash()
        for partial in (self.root / "ingest").iterdir():
            try:
                fd = os.open(partial, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being written right now
            else:
                partial.unlink(missing_ok=True)
            finally:
                os.close(fd)
