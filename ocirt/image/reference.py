"""Image references and digests: parsing, Docker normalisation, validation. Pure: no I/O.

Grammar after distribution/reference (the one Docker, containerd and Kanto accept):
``[domain[:port]/]path[:tag][@digest]``. A first component is a domain only if it contains
``.`` or ``:``, is ``localhost`` or has upper case; otherwise the image lives on docker.io,
and a single-component docker.io path gets ``library/`` (docs/oci-image-notes.md §1 "docker.io
names"). A digest is validated before it is ever used as a file name (CVE-2024-3727).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ocirt.errors import InvalidReference

DOCKER_DOMAIN = "docker.io"
# docker.io is a name, not a host: clients contact this one (containerd DefaultHost).
DOCKER_CONTACT_HOST = "registry-1.docker.io"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]{{1,5}})?")
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
# Explicit ASCII ranges: upper case and Unicode digits (str.isdigit) are refused.
_LOWER_HEX_RE = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True, slots=True)
class Digest:
    """A validated content digest: ``algorithm`` is sha256 or sha512, ``hex`` lower-case."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_digest(text: str) -> Digest:
    """Validate ``algorithm:hex``; only registered algorithms, exact hex length."""
    algorithm, sep, encoded = text.partition(":")
    length = _HEX_LENGTHS.get(algorithm)
    if not sep or length is None:
        raise InvalidReference(f"unsupported digest {text!r}: want sha256:<64 hex>")
    if len(encoded) != length or _LOWER_HEX_RE.fullmatch(encoded) is None:
        raise InvalidReference(f"invalid digest {text!r}")
    return Digest(algorithm, encoded)


@dataclass(frozen=True, slots=True)
class Reference:
    """A normalised reference. ``tag`` is None only when a digest pins the image."""

    domain: str
    path: str
    tag: str | None
    digest: Digest | None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def contact_host(self) -> str:
        """host[:port] to open connections to."""
        return DOCKER_CONTACT_HOST if self.domain == DOCKER_DOMAIN else self.domain

    @property
    def object(self) -> str:
        """What goes after /manifests/: the digest wins over the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_domain(remote: str) -> tuple[str, str]:
    first, sep, rest = remote.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain = DOCKER_DOMAIN if first == "index.docker.io" else first
        return domain, rest
    return DOCKER_DOMAIN, remote


def parse_reference(text: str) -> Reference:
    """Parse and normalise; ``busybox`` -> ``docker.io/library/busybox:latest``."""
    if not isinstance(text, str) or not text or text != text.strip():
        raise InvalidReference(f"invalid image reference {text!r}")
    remote, at, digest_text = text.partition("@")
    digest = parse_digest(digest_text) if at else None
    # A tag is the part after the last ':' that comes after the last '/'.
    tag: str | None = None
    slash = remote.rfind("/")
    colon = remote.rfind(":")
    if colon > slash:
        remote, tag = remote[:colon], remote[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(f"invalid tag in image reference {text!r}")
    domain, path = _split_domain(remote)
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReference(f"invalid registry host in image reference {text!r}")
    if domain == DOCKER_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if not _PATH_RE.fullmatch(path):
        raise InvalidReference(
            f"invalid repository name in image reference {text!r} (must be lower-case)"
        )
    if len(f"{domain}/{path}") > MAX_NAME_LENGTH:
        raise InvalidReference(f"image name too long in {text!r}")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)
