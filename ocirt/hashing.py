"""SHA-2 digests computed with CPython's own code, never OpenSSL. Pure.

For short texts that name things (interfaces, namespaces, record files) and the small
image blobs (configs, manifests) re-checked when a container is created: CPython's own
SHA-2 gives the digest hashlib gives without mapping OpenSSL, about 3 MB of RSS that an
idle daemon would otherwise carry. Layer blobs keep using hashlib: there OpenSSL's speed
matters.
"""

from __future__ import annotations

import importlib
from typing import Any


def _builtin(name: str) -> Any:
    for module in (f"_{name}", "_sha2"):  # the names before and after Python 3.12
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    return getattr(importlib.import_module("hashlib"), name)


_SHA256 = _builtin("sha256")
_BY_ALGORITHM: dict[str, Any] = {"sha256": _SHA256}


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of `text`."""
    return str(_SHA256(text.encode()).hexdigest())


def small_digest_hex(algorithm: str, data: bytes) -> str:
    """Hex digest of ``data`` by ``algorithm`` (sha256 or sha512), for blobs of a few KB."""
    constructor = _BY_ALGORITHM.get(algorithm)
    if constructor is None:
        if algorithm != "sha512":
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        constructor = _BY_ALGORITHM.setdefault("sha512", _builtin("sha512"))
    return str(constructor(data).hexdigest())
