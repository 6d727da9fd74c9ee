"""SoftwareUpdatable:2.0.0 values as Kanto reads and writes them. Pure: no I/O.

Requests are decoded as Go's encoding/json decodes them into Kanto's rollouts datatypes
(absent and null members are empty; a wrong type is a 400 in Go's words), and the texts
of every refusal are Kanto's (features_rollouts_util.go, features_rollouts_*.go).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from ocirt.errors import InvalidArgument

FEATURE_ID = "SoftwareUpdatable"
DEFINITION = "org.eclipse.hawkbit.swupdatable:SoftwareUpdatable:2.0.0"
MODULE_TYPE = "oci:container"

# The hashes Kanto checks, in the order it looks for them.
HASHES = ("MD5", "SHA1", "SHA256")
_DIGEST_SIZES = {"MD5": 16, "SHA1": 20, "SHA256": 32}
# Kanto prefers plain HTTP when a module offers both (features_rollouts_util.go).
PROTOCOLS = ("HTTP", "HTTPS")


class Status(Enum):
    """The OperationStatus states Kanto sends (rollouts/api/datatypes/status.go)."""

    STARTED = "STARTED"
    DOWNLOADING = "DOWNLOADING"
    DOWNLOADED = "DOWNLOADED"
    INSTALLING = "INSTALLING"
    INSTALLED = "INSTALLED"
    REMOVING = "REMOVING"
    REMOVED = "REMOVED"
    FINISHED_SUCCESS = "FINISHED_SUCCESS"
    FINISHED_ERROR = "FINISHED_ERROR"
    FINISHED_REJECTED = "FINISHED_REJECTED"

    @property
    def failed(self) -> bool:
        return self in (Status.FINISHED_ERROR, Status.FINISHED_REJECTED)


class Rejected(Exception):
    """The artifact or descriptor is refused (FINISHED_REJECTED); `str()` is the message."""


# ---- decoding (Go encoding/json semantics, Kanto's type names) ---------------------------


def _go_kind(value: object) -> str:
    match value:
        case bool():
            return "bool"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
        case _:
            return type(value).__name__


def _type_error(value: object, where: str, go_type: str) -> InvalidArgument:
    return InvalidArgument(
        f"json: cannot unmarshal {_go_kind(value)} into Go struct field {where} of type {go_type}"
    )


def _string(obj: Mapping[str, object], key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _type_error(value, f"{where}.{key}", "string")
    return value


def _object(value: object, where: str, go_type: str) -> Mapping[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _type_error(value, where, go_type)
    return value


def _array(obj: Mapping[str, object], key: str, where: str, go_type: str) -> list[object]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(value, f"{where}.{key}", go_type)
    return value


def _bool(obj: Mapping[str, object], key: str, where: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type_error(value, f"{where}.{key}", "bool")
    return value


@dataclass(frozen=True, slots=True)
class ModuleId:
    name: str
    version: str

    def to_value(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True, slots=True)
class Artifact:
    filename: str
    # protocol ("HTTP"/"HTTPS") -> url, in the order the request listed them
    links: Mapping[str, str]
    checksums: Mapping[str, str]
    size: int

    def url(self) -> str | None:
        """The URL Kanto downloads from: HTTP when offered, else HTTPS."""
        for protocol in PROTOCOLS:
            if self.links.get(protocol):
                return self.links[protocol]
        return None


@dataclass(frozen=True, slots=True)
class Module:
    module: ModuleId
    artifacts: tuple[Artifact, ...]


@dataclass(frozen=True, slots=True)
class InstallRequest:
    correlation_id: str
    modules: tuple[Module, ...]
    forced: bool = False


@dataclass(frozen=True, slots=True)
class Dependency:
    """A DependencyDescription: `name` is the container id."""

    name: str
    version: str = ""
    group: str = ""
    type: str = ""

    def to_value(self) -> dict[str, object]:
        # group and type are omitempty in Kanto's datatype, name and version are not.
        value: dict[str, object] = {}
        if self.group:
            value["group"] = self.group
        value["name"] = self.name
        value["version"] = self.version
        if self.type:
            value["type"] = self.type
        return value


@dataclass(frozen=True, slots=True)
class RemoveRequest:
    correlation_id: str
    software: tuple[Dependency, ...]
    forced: bool = False


def _artifact(raw: object, index: int) -> Artifact:
    where = "SoftwareModuleAction.artifacts"
    obj = _object(raw, where, "datatypes.SoftwareArtifactAction") or {}
    links: dict[str, str] = {}
    download = _object(obj.get("download"), f"{where}.download", "map[datatypes.Protocol]*Links")
    for protocol, link in (download or {}).items():
        entry = _object(link, f"{where}.download", "datatypes.Links")
        if entry is not None:
            links[protocol] = _string(entry, "url", "Links")
    checksums: dict[str, str] = {}
    sums = _object(obj.get("checksums"), f"{where}.checksums", "map[datatypes.Hash]string")
    for hash_name, digest in (sums or {}).items():
        if digest is None:
            continue
        if not isinstance(digest, str):
            raise _type_error(digest, f"{where}.checksums", "string")
        checksums[hash_name] = digest
    size = obj.get("size")
    if size is None:
        size = 0
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**64:
        raise _type_error(size, f"{where}.size", "uint64")
    return Artifact(_string(obj, "filename", where), links, checksums, size)


def _module(raw: object) -> Module:
    where = "UpdateAction.softwareModules"
    obj = _object(raw, where, "datatypes.SoftwareModuleAction") or {}
    ident = _object(obj.get("softwareModule"), f"{where}.softwareModule", "SoftwareModuleID")
    module = ModuleId(
        _string(ident or {}, "name", "SoftwareModuleID"),
        _string(ident or {}, "version", "SoftwareModuleID"),
    )
    artifacts = _array(
        obj, "artifacts", "SoftwareModuleAction", "[]*datatypes.SoftwareArtifactAction"
    )
    return Module(module, tuple(_artifact(a, i) for i, a in enumerate(artifacts)))


def parse_install(value: object) -> InstallRequest:
    """The `install` value; InvalidArgument (400) with Kanto's texts when it is unusable."""
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"json: cannot unmarshal {_go_kind(value)} into Go value of type datatypes.UpdateAction"
        )
    modules_raw = _array(
        value, "softwareModules", "UpdateAction", "[]*datatypes.SoftwareModuleAction"
    )
    request = InstallRequest(
        _string(value, "correlationId", "UpdateAction"),
        tuple(_module(m) for m in modules_raw),
        _bool(value, "forced", "UpdateAction"),
    )
    if not request.modules:
        raise InvalidArgument("there are no SoftwareModules to be installed")
    for module in request.modules:
        if not module.artifacts:
            raise InvalidArgument(
                "there are no SoftwareArtifacts referenced for SoftwareModule [Name.version] = "
                f"[{module.module.name}.{module.module.version}]"
            )
    return request


def parse_remove(value: object) -> RemoveRequest:
    """The `remove` value; InvalidArgument (400) with Kanto's texts when it is unusable."""
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"json: cannot unmarshal {_go_kind(value)} into Go value of type datatypes.RemoveAction"
        )
    items = _array(value, "software", "RemoveAction", "[]*datatypes.DependencyDescription")
    software = []
    for raw in items:
        obj = _object(raw, "RemoveAction.software", "datatypes.DependencyDescription") or {}
        where = "DependencyDescription"
        software.append(
            Dependency(
                _string(obj, "name", where),
                _string(obj, "version", where),
                _string(obj, "group", where),
                _string(obj, "type", where),
            )
        )
    if not software:
        raise InvalidArgument("there are no DependencyDescriptions to be removed")
    return RemoveRequest(
        _string(value, "correlationId", "RemoveAction"),
        tuple(software),
        _bool(value, "forced", "RemoveAction"),
    )


def unsupported_operation(operation: str) -> str:
    return f"unsupported operation called [operationId = {operation}]"


# ---- checksums ----------------------------------------------------------------------------


def check_checksum(data: bytes, checksums: Mapping[str, str]) -> None:
    """Kanto's check: the first of MD5, SHA1, SHA256 given; Rejected when it fails.

    A hex text longer than the digest is refused with Kanto's own "length exceeds" text
    (Kanto panics on it and reports "internal runtime error"); a shorter one cannot
    match. Nothing given: nothing to check, as in Kanto.
    """
    for name in HASHES:
        expected = checksums.get(name, "")
        if expected:
            break
    else:
        return
    size = _DIGEST_SIZES[name]
    text = expected.strip()
    invalid = Rejected(
        "the provided input hash is either invalid, not a hex string or the length "
        f"exceeds {size} bytes"
    )
    # Here, not at the top: hashlib maps OpenSSL, which an idle daemon does without.
    import hashlib

    if len(text) % 2 or len(text) > 2 * size:
        raise invalid
    try:
        wanted = bytes.fromhex(text)
    except ValueError:
        raise invalid from None
    if hashlib.new(name.lower(), data).digest() != wanted:
        raise Rejected(f"{name.lower()} checksum does not match")


# ---- status values --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """One `lastOperation` value (Kanto's OperationStatus; empty members left out)."""

    correlation_id: str
    status: Status
    module: ModuleId | None = None
    software: tuple[Dependency, ...] = ()
    message: str = ""

    def to_value(self) -> dict[str, object]:
        value: dict[str, object] = {
            "correlationId": self.correlation_id,
            "status": self.status.value,
        }
        if self.module is not None:
            value["softwareModule"] = self.module.to_value()
        if self.software:
            value["software"] = [item.to_value() for item in self.software]
        if self.message:
            value["message"] = self.message
        return value


def compound_message(errors: Sequence[str]) -> str:
    """Kanto's CompoundError text: the error itself, or a bulleted count."""
    if len(errors) == 1:
        return errors[0]
    return f"{len(errors)} errors:\n\n" + "\n".join(f"* {e}" for e in errors)


# ---- installed dependencies -------------------------------------------------------------------


def dependency_of(container_id: str, image_ref: str) -> Dependency:
    """Kanto splits the image at every ':' (so `localhost:5000/a:1` is group `localhost`)."""
    group, _, version = image_ref.partition(":")
    return Dependency(name=container_id, version=version, group=group)


def dependency_key(dep: Dependency) -> str:
    return f"{dep.group}.{dep.name}:{dep.version}".replace("/", "%2F")


def installed_dependencies(containers: Iterable[tuple[str, str]]) -> dict[str, object]:
    """The `installedDependencies` map of (container id, image ref) pairs."""
    deps = (dependency_of(cid, image) for cid, image in containers)
    return {dependency_key(d): d.to_value() for d in deps}


@dataclass(frozen=True, slots=True)
class FeatureStatus:
    installed: Mapping[str, object] = field(default_factory=dict)

    def feature_value(self) -> dict[str, object]:
        """The whole feature: installedDependencies left out when there are none."""
        status: dict[str, object] = {"softwareModuleType": MODULE_TYPE}
        if self.installed:
            status["installedDependencies"] = dict(self.installed)
        return {"definition": [DEFINITION], "properties": {"status": status}}
