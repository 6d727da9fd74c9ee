"""OCI image layouts (a directory, or a tar of one) as a blob source and as an export
target. Does I/O (files). image-spec image-layout.md: ``oci-layout``, ``index.json``,
``blobs/<alg>/<hex>``. Every name read from an archive is a digest validated before use.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ocirt.atomic import fsync_dir, write_atomic
from ocirt.errors import ImageError, ImageNotFound, InvalidReference
from ocirt.image.manifest import OCI_INDEX, Descriptor, parse_descriptor
from ocirt.image.reference import Digest, parse_reference

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_CHUNK = 1 << 20


class LayoutSource:
    """Reads blobs out of an OCI layout directory or tar archive."""

    def __init__(self, path: Path) -> None:
        self._dir: Path | None = None
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        if path.is_dir():
            self._dir = path
        else:
            try:
                self._tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by close()
                for member in self._tar.getmembers():
                    if member.isreg():
                        self._members[os.path.normpath(member.name).lstrip("/")] = member
            except (OSError, tarfile.TarError) as exc:
                raise ImageError(f"cannot read image archive {path}: {exc}") from exc
        try:
            layout = json.loads(self._read_path("oci-layout", 1 << 16))
            index = json.loads(self._read_path("index.json", 4 << 20))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ImageError(f"{path} is not an OCI layout: {exc}") from exc
        if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
            raise ImageError(f"{path} is not an OCI layout (no imageLayoutVersion)")
        if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise ImageError(f"{path}: index.json has no manifests list")
        self.entries = tuple(
            parse_descriptor(e, f"index.json manifests[{i}]")
            for i, e in enumerate(index["manifests"])
        )

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()

    def _open(self, rel: str) -> IO[bytes]:
        if self._dir is not None:
            try:
                return (self._dir / rel).open("rb")
            except FileNotFoundError as exc:
                raise ImageNotFound(f"{rel} is missing from the image layout") from exc
        assert self._tar is not None
        member = self._members.get(rel)
        extracted = self._tar.extractfile(member) if member is not None else None
        if extracted is None:
            raise ImageNotFound(f"{rel} is missing from the image archive")
        return extracted

    def _read_path(self, rel: str, limit: int) -> bytes:
        with self._open(rel) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"{rel} in the image layout is too large")
        return data

    def read_blob(self, digest: Digest, limit: int) -> bytes:
        return self._read_path(f"blobs/{digest.algorithm}/{digest.hex}", limit)

    def iter_blob(self, digest: Digest) -> Iterator[bytes]:
        with self._open(f"blobs/{digest.algorithm}/{digest.hex}") as f:
            while chunk := f.read(_CHUNK):
                yield chunk


def entry_name(entry: Descriptor) -> str | None:
    """The reference an index.json entry names, if any."""
    return entry.annotations.get(CONTAINERD_NAME) or entry.annotations.get(REF_NAME)


def name_for(entry: Descriptor, default_name: str | None) -> str:
    """A full reference for an entry: containerd's full name, a full ref.name, or
    ``default_name`` plus a tag-only ref.name (skopeo/umoci write bare tags)."""
    name = entry_name(entry)
    if name and ("/" in name or "@" in name):
        return str(parse_reference(name))
    if default_name is None:
        raise InvalidReference(
            f"layout entry {entry.digest} has no full image name; give one with --name"
        )
    base = parse_reference(default_name)
    tag = name or base.tag or "latest"
    return str(parse_reference(f"{base.name}:{tag}"))


class LayoutWriter:
    """Writes an OCI layout directory, or a tar of one, from store blobs."""

    def __init__(self) -> None:
        self._blobs: dict[Digest, Path] = {}
        self._entries: list[dict[str, Any]] = []

    def add_blob(self, digest: Digest, path: Path) -> None:
        self._blobs[digest] = path

    def add_entry(self, descriptor: dict[str, Any]) -> None:
        self._entries.append(descriptor)

    def _index(self) -> bytes:
        return json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self._entries},
            indent=2,
        ).encode()

    def write_dir(self, dest: Path) -> None:
        (dest / "blobs").mkdir(parents=True, exist_ok=True)
        changed: set[Path] = set()
        for digest, src in self._blobs.items():
            target_dir = dest / "blobs" / digest.algorithm
            target_dir.mkdir(exist_ok=True)
            target = target_dir / digest.hex
            if not target.exists():
                tmp = target.with_name(f".{digest.hex}.tmp")
                shutil.copyfile(src, tmp)
                with tmp.open("rb") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, target)
                changed.add(target_dir)
        # Once per directory, before index.json names the blobs.
        for directory in changed:
            fsync_dir(directory)
        write_atomic(dest / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        write_atomic(dest / "index.json", self._index())

    def write_tar(self, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.tmp")
        with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            _add_bytes(tar, "index.json", self._index())
            for digest, src in self._blobs.items():
                tar.add(str(src), arcname=f"blobs/{digest.algorithm}/{digest.hex}")
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
        fsync_dir(dest.parent)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
