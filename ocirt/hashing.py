"""SHA-256 of short texts that name things (interfaces, namespaces, record files). Pure.

CPython's own SHA-256 gives the digest hashlib gives without mapping OpenSSL, about
3 MB of RSS that an idle daemon would otherwise carry just to name its interfaces.
Content digests of image blobs keep using hashlib: there OpenSSL's speed matters.
"""

from __future__ import annotations

import importlib
from typing import Any


def _builtin_sha256() -> Any:
    for module in ("_sha256", "_sha2"):  # the name before and after Python 3.12
        try:
            return importlib.import_module(module).sha256
        except (ImportError, AttributeError):
            continue
    return importlib.import_module("hashlib").sha256


_SHA256 = _builtin_sha256()


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of the UTF-8 bytes of `text`."""
    return str(_SHA256(text.encode()).hexdigest())
