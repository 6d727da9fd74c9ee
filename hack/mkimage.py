#!/usr/bin/env python3
"""Build OCI image layouts for tests and benchmarks from a rootfs dir or from raw tar
layers, with our own code (tarfile + gzip), so that tests control every byte: hostile
entries, multi-platform indexes, wrong DiffIDs.

CLI: hack/mkimage.py LAYOUT TAG ROOTFS [--layers N]   (splits ROOTFS into N layers)
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_bytes(build: Callable[[tarfile.TarFile], None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    return buf.getvalue()


def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def add_entry(tar: tarfile.TarFile, name: str, kind: bytes, **attrs: Any) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = attrs.pop("mode", 0o755 if kind == tarfile.DIRTYPE else 0o777)
    info.mtime = 1_700_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info)


def tar_dir(root: Path, paths: list[str] | None = None) -> bytes:
    """A layer of ``root`` (or of the given relative paths), sorted, numeric owners."""

    def build(tar: tarfile.TarFile) -> None:
        names = paths if paths is not None else _walk(root)
        for rel in names:
            tar.add(root / rel, arcname=rel, recursive=False)

    return tar_bytes(build)


def _walk(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir != ".":
            out.append(rel_dir)
        for name in sorted(filenames):
            out.append(os.path.normpath(os.path.join(rel_dir, name)))
    return out


@dataclass
class Layer:
    tar: bytes
    compress: bool = True
    media_type: str | None = None
    diff_id: str | None = None  # override, to build a lying config
    blob_override: bytes | None = None  # stored bytes that differ from the declared ones
    annotations: dict[str, str] = field(default_factory=dict)

    def blob(self) -> bytes:
        if self.compress:
            return gzip.compress(self.tar, mtime=0)
        return self.tar


def write_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = sha256(data)
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


def write_image(
    layout: Path,
    layers: list[Layer],
    *,
    architecture: str = "amd64",
    variant: str = "",
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write config, layers and manifest blobs; return the manifest descriptor."""
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    descs = []
    for layer in layers:
        blob = layer.blob()
        desc = write_blob(layout, blob)
        if layer.blob_override is not None:
            path = layout / "blobs" / "sha256" / desc["digest"].split(":")[1]
            path.write_bytes(layer.blob_override)
        media_type = layer.media_type or (LAYER_GZIP if layer.compress else LAYER_TAR)
        entry = {"mediaType": media_type, **desc}
        if layer.annotations:
            entry["annotations"] = layer.annotations
        descs.append(entry)
    cfg: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "config": config or {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin:/usr/bin"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": [la.diff_id or sha256(la.tar) for la in layers],
        },
    }
    if variant:
        cfg["variant"] = variant
    config_desc = write_blob(layout, json.dumps(cfg).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config_desc},
        "layers": descs,
    }
    mdesc = write_blob(layout, json.dumps(manifest).encode())
    platform = {"architecture": architecture, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return {"mediaType": OCI_MANIFEST, **mdesc, "platform": platform}


def write_index(layout: Path, tag: str, entries: list[dict[str, Any]], nested: bool) -> None:
    """index.json naming ``tag``: one manifest, or (``nested``) an image index of them."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    if nested:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        top = {"mediaType": OCI_INDEX, **write_blob(layout, json.dumps(index).encode())}
    else:
        (top,) = entries
        top = {k: v for k, v in top.items() if k != "platform"}
    top["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (layout / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [top]})
    )


def split_rootfs(rootfs: Path, count: int) -> list[Layer]:
    """Split a rootfs into ``count`` layers of about equal size (dirs in the first)."""
    names = _walk(rootfs)
    dirs = [n for n in names if (rootfs / n).is_dir() and not (rootfs / n).is_symlink()]
    files = [n for n in names if n not in set(dirs)]
    files.sort(key=lambda n: (rootfs / n).lstat().st_size, reverse=True)
    buckets: list[list[str]] = [[] for _ in range(count)]
    sizes = [0] * count
    for name in files:
        i = sizes.index(min(sizes))
        buckets[i].append(name)
        sizes[i] += (rootfs / name).lstat().st_size
    buckets[0] = dirs + buckets[0]
    return [Layer(tar_dir(rootfs, sorted(b, key=lambda n: (n not in dirs, n)))) for b in buckets]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("layout", type=Path)
    parser.add_argument("tag")
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("--layers", type=int, default=1)
    args = parser.parse_args(argv)
    desc = write_image(args.layout, split_rootfs(args.rootfs, args.layers))
    write_index(args.layout, args.tag, [desc], nested=False)
    print(desc["digest"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
