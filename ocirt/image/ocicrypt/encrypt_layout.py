"""`ocirt image encrypt`: an OCI image layout re-written with its layers encrypted for ocicrypt
recipients (docs/oci-image-notes.md §3), the counterpart of decrypting on pull. Does I/O: reads a
source layout (directory or tar, through `LayoutSource`) and writes a layout directory.

The choices follow `skopeo copy --encryption-key` (containers/image 5.24, as in skopeo 1.9.3):

- An index is followed to the one manifest for the host platform, as `skopeo copy` without
  `--all`; only that manifest is written.
- The manifest written is always OCI: Docker schema2 media types have no `+encrypted` form,
  so containers/image converts them too. The config blob is copied unchanged (its DiffIDs
  name the plain layers, which is what a decrypting puller checks).
- A layer that is already encrypted is copied as it is (copy/encryption.go skips it):
  adding recipients would need a key that opens it.
- DEST is a new or empty directory or an existing layout; an entry carrying the same
  `org.opencontainers.image.ref.name` is replaced, the others are kept. Blobs are written
  first and index.json last, each atomically, so a failure leaves the old index valid
  (and at worst unreferenced whole blobs); a DEST this call created is removed on failure.

Every source blob is checked against its descriptor's digest and size as it streams past,
because the layout may come from anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ocirt.atomic import fsync_dir, write_atomic
from ocirt.errors import DigestMismatch, ImageError, ImageNotFound, InvalidArgument
from ocirt.image.content.layout import CONTAINERD_NAME, REF_NAME, LayoutSource
from ocirt.image.content.pipeline import digest_of
from ocirt.image.manifest import (
    CONFIG_TYPES,
    DOCKER_CONFIG,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    Platform,
    layer_kind,
    parse_document,
    platform_from_machine,
    select_manifest,
)
from ocirt.image.ocicrypt.encrypt import EncryptRecipients, LayerEncrypter, encrypted_media_type
from ocirt.image.ocicrypt.layer import ENCRYPTED_SUFFIX
from ocirt.image.reference import Digest

_MAX_INDEX_DEPTH = 4
_INDEX_JSON_MAX = 4 << 20
_OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
# image-spec annotations.md: the grammar of org.opencontainers.image.ref.name.
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME = re.compile(rf"{_REF_COMPONENT}(?:/{_REF_COMPONENT})*")
# The OCI type each Docker layer type becomes in containers/image's Docker -> OCI conversion.
_DOCKER_TO_OCI_LAYER = {
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": (
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ),
    "application/vnd.docker.image.rootfs.diff.tar.zstd": (
        "application/vnd.oci.image.layer.v1.tar+zstd"
    ),
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": (
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    ),
}


def encrypt_layout(
    src: Path,
    src_tag: str | None,
    dest: Path,
    dest_tag: str,
    recipients: EncryptRecipients,
    layers: Sequence[int] | None = None,
    *,
    platform: Platform | None = None,
) -> Digest:
    """Encrypt the image `src_tag` of layout `src` into layout `dest` as `dest_tag`.

    `layers` are indexes into the manifest's layers, negative ones counting from the end as
    skopeo's `--encrypt-layer`; None encrypts every layer. `platform` defaults to the host's.
    Returns the digest of the manifest written.
    """
    if not _REF_NAME.fullmatch(dest_tag):
        raise InvalidArgument(f"invalid destination tag {dest_tag!r}")
    if recipients.empty:
        raise InvalidArgument("no encryption recipients given")
    _check_dest(dest)
    want = platform or platform_from_machine(os.uname().machine)
    created = not dest.exists()
    try:
        digest = _encrypt(src, src_tag, dest, dest_tag, recipients, layers, want)
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    return digest


def _encrypt(
    src: Path,
    src_tag: str | None,
    dest: Path,
    dest_tag: str,
    recipients: EncryptRecipients,
    layers: Sequence[int] | None,
    want: Platform,
) -> Digest:
    source = LayoutSource(src)
    try:
        entry = _find_entry(source.entries, src_tag, src)
        chosen, raw = _resolve(source, entry, want)
        manifest = parse_document(raw, chosen.media_type)
        assert isinstance(manifest, Manifest)
        selected = _select_layers(layers, len(manifest.layers))
        if manifest.config.media_type not in CONFIG_TYPES:
            raise ImageError(f"config media type {manifest.config.media_type!r} is not an image")
        blobs = dest / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)
        if not (dest / "oci-layout").exists():
            write_atomic(dest / "oci-layout", _OCI_LAYOUT)
        doc: dict[str, Any] = json.loads(raw)
        _copy_blob(source, manifest.config, blobs)
        new_layers = [
            _layer(source, layer, raw_layer, blobs, recipients if i in selected else None)
            for i, (layer, raw_layer) in enumerate(zip(manifest.layers, doc["layers"], strict=True))
        ]
        config = dict(doc["config"])
        if config.get("mediaType") == DOCKER_CONFIG:
            config["mediaType"] = OCI_CONFIG
        doc.update(mediaType=OCI_MANIFEST, config=config, layers=new_layers)
        body = json.dumps(doc, separators=(",", ":")).encode()
        digest = digest_of(body)
        _write_bytes(blobs, digest, body)
    finally:
        source.close()
    descriptor: dict[str, Any] = {
        "mediaType": OCI_MANIFEST,
        "digest": str(digest),
        "size": len(body),
    }
    if chosen.platform is not None:
        descriptor["platform"] = _platform_json(chosen.platform)
    descriptor["annotations"] = {REF_NAME: dest_tag}
    _write_index(dest, descriptor, dest_tag)
    return digest


def _check_dest(dest: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise InvalidArgument(f"destination {dest} is not a directory")
    if not dest.is_dir() or (dest / "oci-layout").exists() or (dest / "index.json").exists():
        return
    if any(dest.iterdir()):
        raise InvalidArgument(f"destination {dest} is neither empty nor an OCI layout")


def _find_entry(entries: Sequence[Descriptor], tag: str | None, src: Path) -> Descriptor:
    if tag is None:
        if len(entries) != 1:
            raise InvalidArgument(f"{src} holds {len(entries)} images; name one as {src}:TAG")
        return entries[0]
    found = [
        e
        for e in entries
        if tag in (e.annotations.get(REF_NAME), e.annotations.get(CONTAINERD_NAME))
    ]
    if not found:
        raise ImageNotFound(f"no image tagged {tag!r} in {src}")
    if len(found) > 1:
        raise InvalidArgument(f"{len(found)} images are tagged {tag!r} in {src}")
    return found[0]


def _resolve(source: LayoutSource, entry: Descriptor, want: Platform) -> tuple[Descriptor, bytes]:
    """The manifest descriptor (carrying its platform if an index chose it) and its bytes."""
    for _ in range(_MAX_INDEX_DEPTH):
        if entry.media_type not in INDEX_TYPES | MANIFEST_TYPES:
            raise ImageError(f"{entry.digest} has media type {entry.media_type!r}, not an image")
        raw = _read_document(source, entry)
        if entry.media_type in MANIFEST_TYPES:
            return entry, raw
        index = parse_document(raw, entry.media_type)
        assert isinstance(index, Index)
        entry = select_manifest(index, want)
    raise ImageError(f"image indexes nested deeper than {_MAX_INDEX_DEPTH}")


def _read_document(source: LayoutSource, desc: Descriptor) -> bytes:
    if desc.size > MAX_MANIFEST_BYTES:
        raise ImageError(f"manifest {desc.digest} is too large ({desc.size} bytes)")
    raw = source.read_blob(desc.digest, MAX_MANIFEST_BYTES)
    hasher = hashlib.new(desc.digest.algorithm, raw)
    if len(raw) != desc.size or hasher.hexdigest() != desc.digest.hex:
        raise DigestMismatch(f"manifest {desc.digest} does not match its descriptor")
    return raw


def _select_layers(layers: Sequence[int] | None, count: int) -> frozenset[int]:
    if layers is None:
        return frozenset(range(count))
    if not layers:
        raise InvalidArgument("no layers selected for encryption")
    selected = set()
    for index in layers:
        if not -count <= index < count:
            raise InvalidArgument(f"layer {index} does not exist: the image has {count} layers")
        selected.add(index % count)
    return frozenset(selected)


def _layer(
    source: LayoutSource,
    layer: Descriptor,
    raw_layer: dict[str, Any],
    blobs: Path,
    recipients: EncryptRecipients | None,
) -> dict[str, Any]:
    """The OCI descriptor of `layer` in the new manifest, its blob written to `blobs`."""
    kind = layer_kind(layer.media_type)
    out = dict(raw_layer)
    out["mediaType"] = _oci_layer_type(layer.media_type)
    if recipients is None or kind.encrypted:
        _copy_blob(source, layer, blobs)
        return out
    digest, size, annotations = _encrypt_blob(source, layer, blobs, recipients)
    out.update(
        mediaType=encrypted_media_type(out["mediaType"]),
        digest=str(digest),
        size=size,
        annotations={**layer.annotations, **annotations},
    )
    return out


def _oci_layer_type(media_type: str) -> str:
    base = media_type.removesuffix(ENCRYPTED_SUFFIX)
    oci = _DOCKER_TO_OCI_LAYER.get(base, base)
    return oci + ENCRYPTED_SUFFIX if base != media_type else oci


def _verified(source: LayoutSource, desc: Descriptor) -> Iterable[bytes]:
    """The blob's chunks; DigestMismatch once it proves longer, shorter or different."""
    hasher = hashlib.new(desc.digest.algorithm)
    size = 0
    for chunk in source.iter_blob(desc.digest):
        size += len(chunk)
        if size > desc.size:
            raise DigestMismatch(f"blob {desc.digest} is larger than its descriptor's size")
        hasher.update(chunk)
        yield chunk
    if size != desc.size or hasher.hexdigest() != desc.digest.hex:
        raise DigestMismatch(f"blob {desc.digest} does not match its descriptor")


def _copy_blob(source: LayoutSource, desc: Descriptor, blobs: Path) -> None:
    target = blobs / desc.digest.algorithm / desc.digest.hex
    if target.exists():
        return  # content-addressed: a blob of that name in DEST already holds these bytes
    _stream_to(blobs / desc.digest.algorithm, _verified(source, desc), lambda _: desc.digest)


def _encrypt_blob(
    source: LayoutSource, desc: Descriptor, blobs: Path, recipients: EncryptRecipients
) -> tuple[Digest, int, dict[str, str]]:
    encrypter = LayerEncrypter(recipients)
    size = 0

    def ciphertext() -> Iterable[bytes]:
        nonlocal size
        for chunk in _verified(source, desc):
            out = encrypter.update(chunk)
            size += len(out)
            yield out

    digest = _stream_to(
        blobs / "sha256", ciphertext(), lambda hexdigest: Digest("sha256", hexdigest)
    )
    return digest, size, encrypter.finalize()


def _stream_to(directory: Path, chunks: Iterable[bytes], name: Callable[[str], Digest]) -> Digest:
    """Write `chunks` to a temp file in `directory`, then rename it to `name(sha256 hex)`."""
    directory.mkdir(exist_ok=True)
    tmp = directory / f".encrypt-{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        hasher = hashlib.sha256()
        with os.fdopen(fd, "wb", closefd=False) as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
        os.fsync(fd)
        digest = name(hasher.hexdigest())
        os.replace(tmp, directory / digest.hex)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    fsync_dir(directory)
    return digest


def _write_bytes(blobs: Path, digest: Digest, body: bytes) -> None:
    directory = blobs / digest.algorithm
    directory.mkdir(exist_ok=True)
    write_atomic(directory / digest.hex, body)


def _write_index(dest: Path, descriptor: dict[str, Any], tag: str) -> None:
    index_path = dest / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if index_path.exists():
        try:
            with index_path.open("rb") as f:
                raw = f.read(_INDEX_JSON_MAX + 1)
            if len(raw) > _INDEX_JSON_MAX:
                raise ImageError(f"{index_path} is too large")
            index = json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ImageError(f"cannot read {index_path}: {exc}") from exc
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ImageError(f"{index_path} has no manifests list")
    kept = [
        entry
        for entry in index["manifests"]
        if not (isinstance(entry, dict) and _annotations(entry).get(REF_NAME) == tag)
    ]
    index["manifests"] = [*kept, descriptor]
    write_atomic(index_path, json.dumps(index, separators=(",", ":")).encode())


def _annotations(entry: dict[str, Any]) -> dict[str, Any]:
    annotations = entry.get("annotations")
    return annotations if isinstance(annotations, dict) else {}


def _platform_json(platform: Platform) -> dict[str, str]:
    out = {"architecture": platform.architecture, "os": platform.os}
    if platform.variant:
        out["variant"] = platform.variant
    return out
