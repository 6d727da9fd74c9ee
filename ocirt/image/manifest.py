"""Image indexes, manifests and configs (OCI and Docker schema2); platform choice; ChainIDs.

Pure: bytes in, frozen values out. Everything parsed here came from a registry or an
archive, so any malformed document is an ImageError naming what is wrong, never a
KeyError or TypeError. Docker schema1 is refused, as containerd >= 2.0 does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ocirt.errors import ImageError, InvalidReference
from ocirt.image.reference import Digest, parse_digest
from ocirt.spec.facts import ImageConfig as ExecutionConfig

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})
# Without the OCI types, distribution 2.8.2 answers 404 for OCI content
# (docs/oci-image-notes.md §1).
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST])
# containerd's cap on manifest bodies (resolver.go).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # 4 MiB, as containerd
MAX_CONFIG_BYTES = 8 * 1024 * 1024
ENCRYPTED_SUFFIX = "+encrypted"


class Compression(Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_LAYER_TYPES: dict[str, Compression] = {
    "application/vnd.oci.image.layer.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
}


@dataclass(frozen=True, slots=True)
class LayerKind:
    compression: Compression
    encrypted: bool


def layer_kind(media_type: str) -> LayerKind:
    encrypted = media_type.endswith(ENCRYPTED_SUFFIX)
    base = media_type.removesuffix(ENCRYPTED_SUFFIX) if encrypted else media_type
    compression = _LAYER_TYPES.get(base)
    if compression is None:
        raise ImageError(f"unsupported layer media type {media_type!r}")
    return LayerKind(compression, encrypted)


@dataclass(frozen=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Index:
    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The parts of an image config that a runtime uses (image-spec config.md): the
    platform and layers here, the execution parameters as the spec builder takes them."""

    platform: Platform
    diff_ids: tuple[Digest, ...]
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)


# ---- architecture normalisation (containerd platforms/database.go) ----

_ARCH_ALIASES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", ""),
    "x86-64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "armv5tel": ("arm", "v5"),
    "armv8l": ("arm", "v8"),
    "arm": ("arm", "v7"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "386": ("386", ""),
}


def normalize_platform(os_name: str, architecture: str, variant: str = "") -> Platform:
    arch = architecture.lower()
    normal, default_variant = _ARCH_ALIASES.get(arch, (arch, ""))
    var = variant.lower() or default_variant
    if normal == "amd64" and var == "v1":
        var = ""
    if normal == "arm64" and var in ("v8", "8"):
        var = ""
    if normal == "arm" and var.isdigit():
        var = f"v{var}"
    return Platform(os_name.lower(), normal, var)


def platform_from_machine(machine: str, os_name: str = "linux") -> Platform:
    """The platform of a host whose ``uname -m`` is ``machine``."""
    return normalize_platform(os_name, machine)


def _variant_number(variant: str) -> int | None:
    text = variant.removeprefix("v").split(".")[0]
    return int(text) if text.isdigit() else None


def platform_rank(want: Platform, have: Platform) -> int | None:
    """0 for an exact match, higher for a compatible fallback, None if unusable.

    Kanto CM#161: a device whose exact variant is missing from the index runs the
    closest lower variant (arm/v7 runs arm/v6); an arm64 host runs arm/v8 and lower.
    """
    want = normalize_platform(want.os, want.architecture, want.variant)
    have = normalize_platform(have.os, have.architecture, have.variant)
    if want.os != have.os:
        return None
    if want == have:
        return 0
    if want.architecture == "arm64" and have.architecture == "arm":
        have_n = _variant_number(have.variant or "v7")
        return None if have_n is None or have_n > 8 else 100 + (8 - have_n)
    if want.architecture != have.architecture:
        return None
    if want.architecture in ("arm", "amd64", "arm64"):
        base = "v8" if want.architecture == "arm64" else "v1"
        want_n = _variant_number(want.variant or base)
        have_n = _variant_number(have.variant or base)
        if want_n is None or have_n is None or have_n > want_n:
            return None
        return want_n - have_n
    return None


def select_manifest(index: Index, want: Platform) -> Descriptor:
    """The first best-ranked entry for ``want`` (image-index.md: the first match wins)."""
    best: tuple[int, Descriptor] | None = None
    for entry in index.manifests:
        if entry.media_type not in INDEX_TYPES | MANIFEST_TYPES:
            continue  # unknown entries are not errors (image-index.md)
        if entry.platform is None:
            if entry.media_type in INDEX_TYPES and best is None:
                best = (1000, entry)  # a nested index without platform: last resort
            continue
        rank = platform_rank(want, entry.platform)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, entry)
    if best is None:
        offered = ", ".join(str(m.platform) for m in index.manifests if m.platform) or "none"
        raise ImageError(f"no image for platform {want} in index (offered: {offered})")
    return best[1]


# ---- parsing ----


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImageError(f"{what}: expected a JSON object")
    return value


def _str(value: Any, what: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise ImageError(f"{what}: expected a string")
    return value


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"{what}: expected a list of strings")
    return tuple(value)


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ImageError(f"{what}: expected an object of strings")
    return dict(value)


def _load_json(raw: bytes, what: str, limit: int) -> dict[str, Any]:
    if len(raw) > limit:
        raise ImageError(f"{what} too large ({len(raw)} bytes)")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what} is not valid JSON: {exc}") from exc
    return _obj(doc, what)


def _digest(value: Any, what: str) -> Digest:
    try:
        return parse_digest(_str(value, what))
    except InvalidReference as exc:
        raise ImageError(f"{what}: {exc.message}") from exc


def parse_descriptor(value: Any, what: str = "descriptor") -> Descriptor:
    doc = _obj(value, what)
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{what}: size must be a non-negative integer")
    platform = None
    if doc.get("platform") is not None:
        p = _obj(doc["platform"], f"{what}.platform")
        platform = Platform(
            _str(p.get("os"), "platform.os"),
            _str(p.get("architecture"), "platform.architecture"),
            _str(p.get("variant"), "platform.variant"),
        )
    return Descriptor(
        media_type=_str(doc.get("mediaType"), f"{what}.mediaType"),
        digest=_digest(doc.get("digest"), f"{what}.digest"),
        size=size,
        platform=platform,
        annotations=_str_map(doc.get("annotations"), f"{what}.annotations"),
        urls=_str_list(doc.get("urls"), f"{what}.urls"),
    )


def parse_document(raw: bytes, content_type: str | None = None) -> Index | Manifest:
    """Parse a manifest or index. ``content_type`` (the HTTP header, parameters ignored)
    must agree with the body's ``mediaType`` when both are present (spec.md l.162)."""
    doc = _load_json(raw, "manifest", MAX_MANIFEST_BYTES)
    declared = _str(doc.get("mediaType"), "manifest.mediaType")
    header = (content_type or "").split(";")[0].strip().lower()
    if header in DOCKER_SCHEMA1 or declared in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ImageError("Docker schema1 manifests are not supported")
    if doc.get("schemaVersion") != 2:
        raise ImageError("manifest: schemaVersion must be 2")
    generic = ("application/json", "application/octet-stream")
    if declared and header and header not in generic and declared != header:
        raise ImageError(f"manifest mediaType {declared!r} disagrees with {header!r}")
    media_type = declared or header
    if not media_type:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media_type in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise ImageError("index: manifests must be a list")
        return Index(
            media_type,
            tuple(parse_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries)),
        )
    if media_type in MANIFEST_TYPES:
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ImageError("manifest: layers must be a list")
        return Manifest(
            media_type,
            parse_descriptor(doc.get("config"), "config"),
            tuple(parse_descriptor(e, f"layers[{i}]") for i, e in enumerate(layers)),
            _str_map(doc.get("annotations"), "annotations"),
        )
    raise ImageError(f"unsupported manifest media type {media_type!r}")


def parse_config_file(raw: bytes) -> ConfigFile:
    doc = _load_json(raw, "image config", MAX_CONFIG_BYTES)
    execution = ExecutionConfig.from_oci_json(doc.get("config"))
    rootfs = _obj(doc.get("rootfs"), "rootfs")
    if rootfs.get("type") != "layers":
        raise ImageError("image config: rootfs.type must be 'layers'")
    raw_ids = rootfs.get("diff_ids")
    if not isinstance(raw_ids, list):
        raise ImageError("image config: rootfs.diff_ids must be a list")
    diff_ids = tuple(_digest(d, f"diff_ids[{i}]") for i, d in enumerate(raw_ids))
    return ConfigFile(
        platform=normalize_platform(
            _str(doc.get("os"), "os", "linux"),
            _str(doc.get("architecture"), "architecture"),
            _str(doc.get("variant"), "variant"),
        ),
        diff_ids=diff_ids,
        execution=execution,
    )


def chain_ids(diff_ids: tuple[Digest, ...]) -> tuple[Digest, ...]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))."""
    out: list[Digest] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
            continue
        text = f"{out[-1]} {diff_id}".encode()
        out.append(Digest("sha256", hashlib.sha256(text).hexdigest()))
    return tuple(out)
