"""The image facade the manager uses: ensure (pull if absent), list, remove, gc,
load/save, and container root filesystems. Does I/O through content/, registry/ and
rootfs/; ocicrypt/ is loaded only for an encrypted image (`ocicrypt()`).

Concurrency: layers are fetched and unpacked on a small thread pool (3 by default);
progress callbacks are called from those threads. Everything else runs in the caller.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from ocirt.errors import (
    CorruptLayer,
    DecryptError,
    DigestMismatch,
    ImageError,
    ImageNotFound,
    RegistryUnavailable,
)
from ocirt.image.content.layout import LayoutSource, LayoutWriter, name_for
from ocirt.image.content.pipeline import Cipher, LayerStream, UnpackLimits, verify_bytes
from ocirt.image.content.store import (
    ContentStore,
    DamagedRecord,
    GcReport,
    ImageRecord,
    Ingest,
    LayerRecord,
)
from ocirt.image.lru import Lru
from ocirt.image.manifest import (
    INDEX_TYPES,
    MAX_CONFIG_BYTES,
    MAX_MANIFEST_BYTES,
    ConfigFile,
    Index,
    Manifest,
    Platform,
    chain_ids,
    layer_kind,
    parse_config_file,
    parse_document,
    platform_from_machine,
    select_manifest,
)
from ocirt.image.reference import Digest, Reference, parse_reference
from ocirt.image.registry.auth import RegistryAccess
from ocirt.image.registry.client import RangeNotHonoured, RegistryClient
from ocirt.image.registry.control import (
    DEFAULT_PULL_DEADLINE,
    DEFAULT_STALL_TIMEOUT,
    PullControl,
)
from ocirt.image.rootfs.snapshot import Snapshotter, create_snapshot
from ocirt.image.rootfs.unpack import WhiteoutMode, apply_layer

if TYPE_CHECKING:
    from ocirt.image.ocicrypt.keys import DecryptKeys


class Ocicrypt(Protocol):
    """What the service (and its callers) use of `ocirt.image.ocicrypt.layer`."""

    def open_layer(self, annotations: Mapping[str, str], keys: DecryptKeys) -> Cipher: ...

    def has_wrapped_keys(self, annotations: Mapping[str, str]) -> bool: ...

    def check_authorised(
        self, layer_annotations_list: Iterable[Mapping[str, str]], keys: DecryptKeys
    ) -> None: ...

    def load_decrypt_keys(self, keys: Sequence[str], recipients: Sequence[str]) -> DecryptKeys: ...


def ocicrypt() -> Ocicrypt:
    """The one seam where `ocirt.image.ocicrypt`, hence cryptography and OpenSSL, is loaded:
    on the first encrypted layer or key file. A device that never meets an encrypted image
    never maps libcrypto (tests/integration/things/test_footprint_e2e.py)."""
    from ocirt.image.ocicrypt import layer

    return layer


def load_decrypt_keys(keys: Sequence[str], recipients: Sequence[str]) -> DecryptKeys:
    """Kanto's `decryption` keys and recipients, read from their files (`ocicrypt.keys`)."""
    return ocicrypt().load_decrypt_keys(keys, recipients)


log = logging.getLogger(__name__)

MAX_INDEX_DEPTH = 4


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a layer's download: ``done`` of ``total`` stored bytes."""

    reference: str
    layer: Digest
    done: int
    total: int


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class Image:
    reference: str
    digest: Digest
    config: ConfigFile
    chain_ids: tuple[Digest, ...]
    size: int
    platform: Platform
    pulled_at: float


@dataclass(frozen=True, slots=True)
class ImageListing:
    """What `ImageService.listing` found: the usable images, and the records that are
    damaged (DamagedRecord: ``name`` of the record file, ``reference`` when it could
    still be read, ``reason``). `ImageService.remove_damaged(name)` removes one."""

    images: list[Image]
    damaged: list[DamagedRecord]


class _Source(Protocol):
    """Where an image's blobs come from: a registry or an OCI layout."""

    def document(self, digest: Digest) -> tuple[bytes, str | None]: ...
    def blob(self, digest: Digest, limit: int) -> bytes: ...
    def open_blob(self, digest: Digest, size: int, offset: int) -> Iterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class ImportJob:
    """One image to bring in: its name, where its blobs come from, its top document (an
    index or a manifest, as fetched), the keys for encrypted layers, whom to tell."""

    name: str
    source: _Source
    body: bytes
    content_type: str | None
    digest: Digest
    keys: DecryptKeys | None = None
    progress: ProgressFn | None = None
    control: PullControl | None = None  # a pull's; None for a local import


class _RegistrySource:
    def __init__(self, client: RegistryClient, ref: Reference, control: PullControl) -> None:
        self._client = client
        self._ref = ref
        self._control = control

    def document(self, digest: Digest) -> tuple[bytes, str | None]:
        body, content_type, _ = self._client.get_manifest(
            self._ref, str(digest), control=self._control
        )
        return body, content_type

    def blob(self, digest: Digest, limit: int) -> bytes:
        return self._client.get_blob(self._ref, digest, limit, control=self._control)

    def open_blob(self, digest: Digest, size: int, offset: int) -> Iterator[bytes]:
        return self._client.iter_blob(self._ref, digest, size, offset, control=self._control)


@dataclass(slots=True)
class _InFlight:
    """A pull under way, which later pulls of the same reference wait for."""

    control: PullControl
    done: threading.Event
    callers: int = 1  # the leader and those waiting for it
    image: Image | None = None
    error: BaseException | None = None


class _LayoutBlobs:
    def __init__(self, layout: LayoutSource) -> None:
        self._layout = layout

    def document(self, digest: Digest) -> tuple[bytes, str | None]:
        return self._layout.read_blob(digest, 4 << 20), None

    def blob(self, digest: Digest, limit: int) -> bytes:
        return self._layout.read_blob(digest, limit)

    def open_blob(self, digest: Digest, size: int, offset: int) -> Iterator[bytes]:
        # Archives cannot resume; ``offset`` bytes are skipped from the start.
        skip = offset
        for chunk in self._layout.iter_blob(digest):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0


LAST_USE_RESOLUTION = 60.0  # seconds
# Parsed configs and manifests kept by digest: content-addressed, so never stale.
PARSED_CACHE_SIZE = 64


class ImageService:
    def __init__(
        self,
        home_dir: Path,
        settings: RegistryAccess | None = None,
        *,
        platform: Platform | None = None,
        parallel: int = 3,
        use_overlay: bool | None = None,
        client: RegistryClient | None = None,
        unpack_limits: UnpackLimits | None = None,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        pull_deadline: float | None = DEFAULT_PULL_DEADLINE,
    ) -> None:
        """``unpack_limits``: how far a layer may inflate (`UnpackLimits`); a pull ends
        when the registry sends nothing for ``stall_timeout`` s or after ``pull_deadline``
        s in all (None: no deadline)."""
        if stall_timeout <= 0 or (pull_deadline is not None and pull_deadline <= 0):
            raise ValueError("pull timeouts must be positive")
        self.store = ContentStore(Path(home_dir) / "images")
        self.snapshots = Snapshotter(self.store, use_overlay=use_overlay)
        self._settings = settings or RegistryAccess()
        self._client = client
        self.platform = platform or platform_from_machine(os.uname().machine)
        self._parallel = max(1, parallel)
        self._unpack_limits = unpack_limits or UnpackLimits()
        # Guards the sweep against imports: an import stores blobs and snapshots before
        # the record that keeps them, so no sweep may run while one is under way.
        self._lock = threading.Lock()
        self._importing = 0
        self._stall_timeout = stall_timeout
        self._pull_deadline = pull_deadline
        self._inflight: dict[str, _InFlight] = {}  # by reference; under _lock
        # Each kept only after its blob was read and its digest checked. Whether an image
        # is present is never answered here: the record decides (store.get_record).
        self._configs: Lru[Digest, ConfigFile] = Lru(PARSED_CACHE_SIZE)
        self._encrypted: Lru[Digest, tuple[Mapping[str, str], ...]] = Lru(PARSED_CACHE_SIZE)

    @property
    def client(self) -> RegistryClient:
        if self._client is None:
            self._client = RegistryClient(self._settings)
        return self._client

    # ---- queries ----

    def get(self, reference: str) -> Image:
        name = str(parse_reference(reference))
        record = self.store.get_record(name)
        if record is None:
            raise ImageNotFound(f"image {name} is not present")
        return self._image(record)

    def images(self) -> list[Image]:
        """The usable images; damaged records are logged and left out (see `listing`)."""
        return self.listing().images

    def listing(self) -> ImageListing:
        """Every image record: usable ones as Images, damaged ones with the reason (a
        garbled record, or its config blob missing or unreadable). Each damaged one is
        logged at WARNING."""
        records, damaged = self.store.scan_records()
        images = []
        for record in records:
            try:
                # Read afresh: a config blob lost since it was parsed is damage to report.
                images.append(self._image(record, reuse=False))
            except (ImageError, OSError) as exc:
                reason = exc.message if isinstance(exc, ImageError) else str(exc)
                name = self.store.record_name(record.reference)
                damaged.append(DamagedRecord(name, record.reference, f"config: {reason}"))
        for item in damaged:
            log.warning(
                "image record %s (%s) is damaged: %s",
                item.name,
                item.reference or "reference unreadable",
                item.reason,
            )
        return ImageListing(images, damaged)

    def remove_damaged(self, name: str) -> None:
        """Remove the damaged record file ``name`` (`ImageListing.damaged`); what only it
        kept goes with the next sweep."""
        with self._lock:
            if not self.store.delete_damaged(name):
                raise ImageNotFound(f"image record {name} is not present")

    def _image(self, record: ImageRecord, *, reuse: bool = True) -> Image:
        config = self._configs.get(record.config) if reuse else None
        if config is None:
            data = self.store.read_blob(record.config, MAX_CONFIG_BYTES)
            # The cache key is the digest, so the bytes must be the digest's.
            verify_bytes(data, record.config, f"{record.reference}: config")
            config = parse_config_file(data)
            self._configs.put(record.config, config)
        return Image(
            record.reference,
            record.digest,
            config,
            record.chain_ids,
            record.size,
            record.platform,
            record.pulled_at,
        )

    def present(self, reference: str) -> bool:
        """Whether the image and all its snapshots are in the store (`ensure` pulls none)."""
        record = self.store.get_record(str(parse_reference(reference)))
        return record is not None and all(self.store.has_snapshot(c) for c in record.chain_ids)

    @contextlib.contextmanager
    def importing(self) -> Iterator[None]:
        """Hold the sweep off while another process imports into this store."""
        with self._lock:
            self._importing += 1
        try:
            yield
        finally:
            with self._lock:
                self._importing -= 1

    # ---- pull ----

    def ensure(
        self,
        reference: str,
        keys: DecryptKeys | None = None,
        progress: ProgressFn | None = None,
        *,
        deadline: float | None = None,
    ) -> Image:
        """The image, pulled only if it (or one of its snapshots) is absent; ``deadline``
        as in `pull`."""
        name = str(parse_reference(reference))
        try:
            record = self.store.get_record(name)
        except ImageError as exc:
            log.warning("%s; pulling %s again", exc.message, name)
            record = None
        if record is not None and all(self.store.has_snapshot(c) for c in record.chain_ids):
            image = self._image(record)
            # Kanto checks the keys before unpack even when the image is on the device.
            self.authorise(image, keys)
            now = time.time()
            # Expiry counts from the last use. Refreshing it at most once a minute spares
            # the flash a synced write per container create; expiries are hours long.
            if now - record.last_used >= LAST_USE_RESOLUTION:
                self.store.put_record(replace(record, last_used=now))
            return image
        return self.pull(reference, keys, progress, deadline=deadline)

    def pull(
        self,
        reference: str,
        keys: DecryptKeys | None = None,
        progress: ProgressFn | None = None,
        *,
        deadline: float | None = None,
    ) -> Image:
        """Pull ``reference`` from its registry. ``deadline`` (seconds) replaces the
        service's ``pull_deadline`` for this pull. A pull of the same reference already
        under way is waited for instead of starting a second download."""
        ref = parse_reference(reference)
        name = str(ref)
        while True:
            with self._lock:
                flight = self._inflight.get(name)
                leading = flight is None
                if flight is not None:
                    flight.callers += 1
                else:
                    control = PullControl(
                        name,
                        stall_timeout=self._stall_timeout,
                        deadline=deadline if deadline is not None else self._pull_deadline,
                    )
                    flight = _InFlight(control, threading.Event())
                    self._inflight[name] = flight
            if leading:
                return self._lead(ref, flight, keys, progress)
            flight.done.wait()
            if flight.image is not None:
                self.authorise(flight.image, keys)  # our keys, not the leader's
                return flight.image
            if isinstance(flight.error, DecryptError):
                continue  # refused the leader's keys, maybe not ours: pull with ours
            raise _copy_of(flight.error, name)

    def _lead(
        self,
        ref: Reference,
        flight: _InFlight,
        keys: DecryptKeys | None,
        progress: ProgressFn | None,
    ) -> Image:
        try:
            source = _RegistrySource(self.client, ref, flight.control)
            body, content_type, digest = self.client.get_manifest(ref, control=flight.control)
            job = ImportJob(
                str(ref), source, body, content_type, digest, keys, progress, flight.control
            )
            flight.image = self._import(job)
            return flight.image
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._inflight[str(ref)]
            flight.done.set()

    def pulls_in_flight(self) -> dict[str, int]:
        """The references being pulled, each with the number of callers waiting for it
        (the one pulling included)."""
        with self._lock:
            return {name: flight.callers for name, flight in self._inflight.items()}

    def cancel_all(self, reason: str = "cancelled") -> int:
        """End every pull in flight at once with PullCancelled (``pull <ref>: <reason>``),
        leaving their partial blobs for the next pull; returns how many there were.
        Pulls started afterwards are not affected."""
        with self._lock:
            flights = list(self._inflight.values())
        for flight in flights:
            flight.control.cancel(reason)
        return len(flights)

    def _import(self, job: ImportJob) -> Image:
        with self._lock:
            self._importing += 1
        try:
            return self._import_unguarded(job)
        finally:
            with self._lock:
                self._importing -= 1

    def _import_unguarded(self, job: ImportJob) -> Image:
        name, source, keys = job.name, job.source, job.keys
        body, content_type, digest = job.body, job.content_type, job.digest
        doc = parse_document(body, content_type)
        depth = 0
        while isinstance(doc, Index):
            depth += 1
            if depth > MAX_INDEX_DEPTH:
                raise ImageError(f"{name}: image indexes nested too deeply")
            chosen = select_manifest(doc, self.platform)
            body, content_type = source.document(chosen.digest)
            digest = chosen.digest
            verify_bytes(body, digest, f"{name}: manifest {digest}")
            doc = parse_document(body, content_type or chosen.media_type)
            if isinstance(doc, Index) != (chosen.media_type in INDEX_TYPES):
                raise ImageError(f"{name}: descriptor type {chosen.media_type} disagrees")
        manifest = doc
        if self.store.has_blob(manifest.config.digest):
            config_bytes = self.store.read_blob(manifest.config.digest, MAX_CONFIG_BYTES)
        else:
            config_bytes = source.blob(manifest.config.digest, MAX_CONFIG_BYTES)
        config = parse_config_file(config_bytes)
        if len(config.diff_ids) != len(manifest.layers):
            raise ImageError(
                f"{name}: config lists {len(config.diff_ids)} DiffIDs "
                f"for {len(manifest.layers)} layers"
            )
        chains = chain_ids(config.diff_ids)
        # Before any layer is fetched: layers already unpacked (shared with another image)
        # would otherwise be used without their keys ever being checked.
        _authorise(name, _encrypted_annotations(manifest), keys)
        self._fetch_layers(name, source, manifest, config, chains, keys, job.progress, job.control)
        self.store.put_blob(config_bytes, manifest.config.digest)
        self.store.put_blob(body, digest)
        now = time.time()
        record = ImageRecord(
            reference=name,
            digest=digest,
            media_type=manifest.media_type,
            config=manifest.config.digest,
            layers=tuple(
                LayerRecord(la.digest, la.size, la.media_type, d, c)
                for la, d, c in zip(manifest.layers, config.diff_ids, chains, strict=True)
            ),
            platform=config.platform,
            pulled_at=now,
            last_used=now,
        )
        self.store.put_record(record)
        return self._image(record)

    def _fetch_layers(
        self,
        name: str,
        source: _Source,
        manifest: Manifest,
        config: ConfigFile,
        chains: tuple[Digest, ...],
        keys: DecryptKeys | None,
        progress: ProgressFn | None,
        control: PullControl | None,
    ) -> None:
        todo = [
            i
            for i, chain in enumerate(chains)
            if not (
                self.store.has_snapshot(chain) and self.store.has_blob(manifest.layers[i].digest)
            )
        ]
        if not todo:
            return
        with ThreadPoolExecutor(self._parallel, thread_name_prefix="ocirt-pull") as pool:
            futures: list[Future[None]] = [
                pool.submit(
                    self._fetch_layer,
                    name,
                    source,
                    manifest.layers[i].digest,
                    manifest.layers[i].size,
                    manifest.layers[i].media_type,
                    dict(manifest.layers[i].annotations),
                    config.diff_ids[i],
                    chains[i],
                    keys,
                    progress,
                )
                for i in todo
            ]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            first = next((f.exception() for f in done if f.exception() is not None), None)
            if first is not None:
                for other in futures:
                    other.cancel()
                if control is not None:
                    # Layers still downloading stop too; their partials stay.
                    control.cancel(f"stopped: another layer failed: {first}")
        if first is not None:
            raise first
        for future in futures:
            if future.cancelled():
                raise ImageError(f"{name}: pull cancelled")
            future.result()

    def _fetch_layer(
        self,
        name: str,
        source: _Source,
        digest: Digest,
        size: int,
        media_type: str,
        annotations: dict[str, str],
        diff_id: Digest,
        chain: Digest,
        keys: DecryptKeys | None,
        progress: ProgressFn | None,
    ) -> None:
        kind = layer_kind(media_type)
        what = f"{name} layer {digest}"

        def report(done: int) -> None:
            if progress is not None:
                progress(Progress(name, digest, done, size))

        for attempt in range(2):
            # Before the ingest is opened: a refusal here must not leave its lock held,
            # which would hang the next pull of this blob.
            cipher = self._cipher(what, annotations, keys) if kind.encrypted else None
            ingest = None
            if self.store.has_blob(digest):
                chunks: Iterator[bytes] = self.store.iter_blob(digest)
            else:
                ingest = self.store.ingest(digest)
                if self.store.has_blob(digest):  # another puller finished it meanwhile
                    ingest.close()
                    chunks = self.store.iter_blob(digest)
                    ingest = None
                else:
                    if ingest.offset > size:
                        ingest.reset()  # not a prefix of this blob
                    chunks = itertools.chain(
                        ingest.read_existing(),
                        _tee(source.open_blob(digest, size, ingest.offset), ingest.write),
                    )

            def fill(
                tmp: Path,
                chunks: Iterator[bytes] = chunks,
                cipher: Cipher | None = cipher,
                ingest: Ingest | None = ingest,
            ) -> None:
                stream = LayerStream(
                    chunks,
                    digest=digest,
                    size=size,
                    diff_id=diff_id,
                    compression=kind.compression,
                    what=what,
                    cipher=cipher,
                    progress=report,
                    max_unpacked=self._unpack_limits.for_blob(size),
                )
                try:
                    apply_layer(cast(IO[bytes], stream), str(tmp), WhiteoutMode.OVERLAY)
                except ImageError as exc:
                    stream.blame_digest(exc)  # a tampered blob is named as such
                    raise
                stream.finish()
                if ingest is not None:
                    ingest.commit()

            try:
                create_snapshot(self.store, chain, fill)
                return
            except RangeNotHonoured:
                if ingest is None or attempt:
                    raise
                ingest.reset()
                ingest.close()
            except (DigestMismatch, CorruptLayer, DecryptError):
                if ingest is None:
                    raise
                resumed = ingest.offset > 0
                ingest.discard()
                if not resumed or attempt:
                    raise  # a stale partial file gets one clean retry; bad content does not
            except RegistryUnavailable:
                raise  # the partial blob stays for the next pull to resume
            except BaseException:
                if ingest is not None:
                    ingest.discard()
                raise
            finally:
                if ingest is not None:
                    ingest.close()
        raise ImageError(f"{what}: download did not complete")

    def _cipher(self, what: str, annotations: dict[str, str], keys: DecryptKeys | None) -> Cipher:
        if keys is None or keys.empty:
            raise DecryptError(f"{what}: layer is encrypted and no decryption keys were given")
        try:
            return ocicrypt().open_layer(annotations, keys)
        except DecryptError as exc:
            raise DecryptError(f"{what}: {exc.message}") from exc

    # ---- authorisation ----

    def encrypted_layers(self, image: Image) -> tuple[Mapping[str, str], ...]:
        """The annotations of the image's encrypted layers, read from its stored manifest;
        empty for a plain image."""
        encrypted = self._encrypted.get(image.digest)
        if encrypted is None:
            data = self.store.read_blob(image.digest, MAX_MANIFEST_BYTES)
            verify_bytes(data, image.digest, f"{image.reference}: manifest")
            doc = parse_document(data)
            if not isinstance(doc, Manifest):
                raise ImageError(f"{image.reference}: stored manifest {image.digest} is an index")
            # Read-only views: the cached tuple is shared by every caller.
            encrypted = tuple(MappingProxyType(dict(a)) for a in _encrypted_annotations(doc))
            self._encrypted.put(image.digest, encrypted)
        return encrypted

    def authorise(self, image: Image, keys: DecryptKeys | None) -> None:
        """Raise DecryptError unless ``keys`` unwrap the key of every encrypted layer of
        ``image``. Nothing is remembered: each call unwraps again."""
        _authorise(image.reference, self.encrypted_layers(image), keys)

    # ---- removal and gc ----

    def remove(self, reference: str) -> None:
        name = str(parse_reference(reference))
        with self._lock:
            if not self.store.delete_record(name):
                raise ImageNotFound(f"image {name} is not present")
            if not self._importing:  # else the next sweep frees what the record kept
                self.store.gc((), self.snapshots.active_chains(), None)

    def gc(self, in_use: set[str], expiry_seconds: float | None) -> GcReport | None:
        """Kanto ``image_expiry``: unused images older than the expiry go (None: never);
        orphaned blobs and snapshots always go. None, doing nothing, while an import is
        under way: its blobs and snapshots have no record yet."""
        with self._lock:
            if self._importing:
                return None
            normalised = {str(parse_reference(r)) for r in in_use}
            return self.store.gc(normalised, self.snapshots.active_chains(), expiry_seconds)

    # ---- container root filesystems ----

    def prepare_rootfs(self, image: Image, container_id: str) -> Path:
        return self.snapshots.prepare(container_id, image.chain_ids)

    def release_rootfs(self, container_id: str) -> None:
        self.snapshots.release(container_id)

    # ---- offline ----

    def load(self, path: Path, name: str | None = None) -> list[Image]:
        """Import every image of an OCI layout dir or tar; ``name`` names bare tags."""
        layout = LayoutSource(path)
        try:
            blobs = _LayoutBlobs(layout)
            out = []
            for entry in layout.entries:
                ref_name = name_for(entry, name)
                body = layout.read_blob(entry.digest, 4 << 20)
                verify_bytes(body, entry.digest, f"{path}: manifest {entry.digest}")
                out.append(
                    self._import(ImportJob(ref_name, blobs, body, entry.media_type, entry.digest))
                )
            return out
        finally:
            layout.close()

    def save(self, references: list[str], dest: Path) -> None:
        """Export images (with all their blobs) as an OCI layout dir, or a tar if
        ``dest`` ends in .tar."""
        writer = LayoutWriter()
        for reference in references:
            name = str(parse_reference(reference))
            record = self.store.get_record(name)
            if record is None:
                raise ImageNotFound(f"image {name} is not present")
            manifest_bytes = self.store.read_blob(record.digest)
            for digest in (record.digest, record.config, *(la.digest for la in record.layers)):
                if not self.store.has_blob(digest):
                    raise ImageError(f"{name}: blob {digest} is missing; pull it again")
                writer.add_blob(digest, self.store.blob_path(digest))
            ref = parse_reference(name)
            annotations = {"io.containerd.image.name": name}
            if ref.tag:
                annotations["org.opencontainers.image.ref.name"] = ref.tag
            entry: dict[str, Any] = {
                "mediaType": record.media_type,
                "digest": str(record.digest),
                "size": len(manifest_bytes),
                "annotations": annotations,
            }
            writer.add_entry(entry)
        try:
            if dest.suffix == ".tar":
                writer.write_tar(dest)
            else:
                writer.write_dir(dest)
        except OSError as exc:
            raise ImageError(f"cannot write {dest}: {exc}") from exc


def _encrypted_annotations(manifest: Manifest) -> tuple[Mapping[str, str], ...]:
    return tuple(
        layer.annotations for layer in manifest.layers if layer_kind(layer.media_type).encrypted
    )


def _authorise(
    name: str, encrypted: tuple[Mapping[str, str], ...], keys: DecryptKeys | None
) -> None:
    if not encrypted:
        return
    if keys is None or keys.empty:
        raise DecryptError(f"{name}: image is encrypted and no decryption keys were given")
    for layer in encrypted:
        # check_authorised passes a layer without wrapped keys as plain; by its media type
        # this one is encrypted, so it could never be opened.
        if not ocicrypt().has_wrapped_keys(layer):
            raise DecryptError(f"{name}: an encrypted layer carries no wrapped keys")
    try:
        ocicrypt().check_authorised(encrypted, keys)
    except DecryptError as exc:
        raise DecryptError(f"{name}: {exc.message}") from exc


def _copy_of(error: BaseException | None, name: str) -> BaseException:
    """The leader's error for a waiter to raise: a copy, so that two threads never raise
    (and chain tracebacks onto) one exception object."""
    if error is None:
        return ImageError(f"{name}: pull ended without a result")
    try:
        twin = copy.copy(error)
    except Exception:
        return ImageError(f"{name}: pull failed: {error}")
    twin.__cause__ = error
    return twin


def _tee(chunks: Iterator[bytes], sink: Callable[[bytes], None]) -> Iterator[bytes]:
    for chunk in chunks:
        sink(chunk)
        yield chunk
