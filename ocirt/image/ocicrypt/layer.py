"""Decryption of ocicrypt-encrypted layers (docs/oci-image-notes.md §3; containers/ocicrypt).

Owns the layer side of ocicrypt: the `+encrypted` media types, the
`org.opencontainers.image.enc.*` annotations, the private and public options JSON, choosing a
key-wrap protocol (JWE, PKCS7, PGP) and a key, and the streaming AES-256-CTR cipher whose
HMAC-SHA256 over the ciphertext is checked at the end. The caller stages what `update`
returns and commits it only after `finalize` has passed. Keys come from `keys`;
the encrypting direction is `encrypt`.

Pure but for PGP, which runs gpg (`pgp`).
Every failure caused by input (annotations, keys, ciphertext) is a DecryptError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt import jwe, pgp, pkcs7
from ocirt.image.ocicrypt.keys import DecryptKeys, load_decrypt_keys

__all__ = [
    "ANNOTATION_PREFIX",
    "CIPHER_AES_CTR_HMAC_SHA256",
    "PUBOPTS_ANNOTATION",
    "DecryptKeys",
    "LayerCipher",
    "PrivateOptions",
    "PublicOptions",
    "WrapScheme",
    "check_authorised",
    "decrypted_media_type",
    "has_wrapped_keys",
    "is_encrypted",
    "load_decrypt_keys",
    "open_layer",
    "parse_private_options",
    "parse_public_options",
    "plain_annotations",
    "unwrap_private_options",
]

ENCRYPTED_SUFFIX = "+encrypted"
ANNOTATION_PREFIX = "org.opencontainers.image.enc."
KEYS_ANNOTATION_PREFIX = ANNOTATION_PREFIX + "keys."
PUBOPTS_ANNOTATION = ANNOTATION_PREFIX + "pubopts"
CIPHER_AES_CTR_HMAC_SHA256 = "AES_256_CTR_HMAC_SHA256"

_DIGEST = re.compile(r"(sha256):([a-f0-9]{64})|(sha512):([a-f0-9]{128})")


class WrapScheme(Enum):
    """Key-wrap protocols ocirt can unwrap, in the order it tries them (cheapest first)."""

    JWE = "jwe"
    PKCS7 = "pkcs7"
    PGP = "pgp"


@dataclass(frozen=True, slots=True)
class PrivateOptions:
    """The wrapped part: the layer key, the digest of the plain blob and cipher options."""

    symkey: bytes
    digest: str
    cipher_options: Mapping[str, bytes]


@dataclass(frozen=True, slots=True)
class PublicOptions:
    """The `pubopts` annotation: which cipher, the expected HMAC and public cipher options."""

    cipher: str
    hmac: bytes
    cipher_options: Mapping[str, bytes]


def is_encrypted(media_type: str) -> bool:
    return media_type.endswith(ENCRYPTED_SUFFIX)


def decrypted_media_type(media_type: str) -> str:
    """The media type of the decrypted blob; a type that is not encrypted is returned as is."""
    return media_type.removesuffix(ENCRYPTED_SUFFIX)


def plain_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """The annotations of the decrypted layer: ocicrypt drops every `enc.*` one."""
    return {k: v for k, v in annotations.items() if not k.startswith(ANNOTATION_PREFIX)}


def has_wrapped_keys(annotations: Mapping[str, str]) -> bool:
    return any(k.startswith(KEYS_ANNOTATION_PREFIX) for k in annotations)


def parse_private_options(data: bytes) -> PrivateOptions:
    """Parse the unwrapped private options JSON (Go encoding/json rules). Pure."""
    obj = _json_object(data, "private options")
    symkey = _b64_field(obj, "symkey", "private options")
    if len(symkey) != 32:
        raise DecryptError("the layer key is not 32 bytes")
    digest = _field(obj, "digest")
    if digest is None:
        digest = ""
    if not isinstance(digest, str) or (digest and not _DIGEST.fullmatch(digest)):
        raise DecryptError("private options carry a malformed digest")
    return PrivateOptions(symkey, digest, _cipher_options(obj, "private options"))


def parse_public_options(annotations: Mapping[str, str]) -> PublicOptions:
    """Parse the `pubopts` annotation; absent means `{}` as in ocicrypt. Pure."""
    raw = annotations.get(PUBOPTS_ANNOTATION)
    data = _b64decode(raw, "pubopts annotation") if raw is not None else b"{}"
    obj = _json_object(data, "public options")
    cipher = _field(obj, "cipher")
    if not cipher:
        raise DecryptError("no cipher type provided in the pubopts annotation")
    if cipher != CIPHER_AES_CTR_HMAC_SHA256:
        raise DecryptError(f"unsupported layer cipher {cipher!r}")
    mac = _b64_field(obj, "hmac", "public options")
    if len(mac) != 32:
        raise DecryptError("the layer HMAC is missing or not 32 bytes")
    return PublicOptions(cipher, mac, _cipher_options(obj, "public options"))


def unwrap_private_options(annotations: Mapping[str, str], keys: DecryptKeys) -> PrivateOptions:
    """Unwrap the layer's private options with whichever key and protocol works.

    Follows ocicrypt `decryptLayerKeyOptsData`: a protocol is tried only if a key of its kind
    was given; each annotation holds comma-separated base64 blobs, each tried with each key.
    """
    wrapped = _wrapped_keys(annotations)
    if not wrapped:
        foreign = sorted(
            k.removeprefix(KEYS_ANNOTATION_PREFIX)
            for k in annotations
            if k.startswith(KEYS_ANNOTATION_PREFIX)
        )
        if foreign:
            raise DecryptError(f"layer keys are wrapped only for {', '.join(foreign)}")
        raise DecryptError("layer has no wrapped keys (no enc.keys annotation)")
    usable = [p for p in wrapped if _has_keys_for(p, keys)]
    if not usable:
        names = ", ".join(p.value for p in wrapped)
        raise DecryptError(
            f"missing private key needed for decryption: layer is wrapped for {names}"
        )
    problems: list[str] = []
    for protocol in usable:
        for blob in wrapped[protocol]:
            try:
                return parse_private_options(_unwrap(protocol, blob, keys))
            except DecryptError as exc:
                problems.append(f"{protocol.value}: {exc.message}")
    tried = ", ".join(p.value for p in usable)
    detail = "; ".join(dict.fromkeys(problems))
    raise DecryptError(f"no key opens the layer (tried {tried}): {detail}")


def open_layer(annotations: Mapping[str, str], keys: DecryptKeys) -> LayerCipher:
    """A streaming decrypter for the layer blob described by `annotations`."""
    public = parse_public_options(annotations)
    private = unwrap_private_options(annotations, keys)
    nonce = public.cipher_options.get("nonce", private.cipher_options.get("nonce"))
    if nonce is None or len(nonce) != 16:
        raise DecryptError("the layer nonce is missing or not 16 bytes")
    return LayerCipher(private.symkey, nonce, public.hmac, private.digest)


def check_authorised(
    layer_annotations_list: Iterable[Mapping[str, str]], keys: DecryptKeys
) -> None:
    """Raise DecryptError unless `keys` open every encrypted layer (Kanto checks this before
    unpack and before each start). Layers without `enc.keys` annotations are plain ones."""
    for index, layer in enumerate(layer_annotations_list):
        if not has_wrapped_keys(layer) and PUBOPTS_ANNOTATION not in layer:
            continue
        try:
            unwrap_private_options(layer, keys)
        except DecryptError as exc:
            raise DecryptError(f"not authorised to decrypt layer {index}: {exc.message}") from exc


class LayerCipher:
    """AES-256-CTR decryption with HMAC-SHA256 over the ciphertext (ocicrypt blockcipher).

    `update` returns plaintext at once; nothing it returned may be used before `finalize`
    has checked the HMAC and the plain blob's digest from the private options.
    """

    __slots__ = ("_decryptor", "_digest", "_expected_mac", "_finished", "_hash", "_mac")

    def __init__(self, symkey: bytes, nonce: bytes, expected_mac: bytes, digest: str) -> None:
        # ocicrypt uses the whole 16-byte nonce as the initial counter block (Go cipher.NewCTR).
        self._decryptor: CipherContext = Cipher(
            algorithms.AES(symkey), modes.CTR(nonce)
        ).decryptor()
        self._mac = hmac.new(symkey, digestmod=hashlib.sha256)
        self._expected_mac = expected_mac
        self._digest = digest
        self._hash: Any = hashlib.new(digest.split(":", 1)[0]) if digest else None
        self._finished = False

    @property
    def plain_digest(self) -> str:
        """The digest of the decrypted blob as the private options state it ("" if absent)."""
        return self._digest

    def update(self, chunk: bytes) -> bytes:
        if self._finished:
            raise DecryptError("layer cipher used after finalize")
        self._mac.update(chunk)
        plain = self._decryptor.update(chunk)
        if self._hash is not None:
            self._hash.update(plain)
        return plain

    def finalize(self) -> None:
        """Raise DecryptError if the ciphertext's HMAC or the plaintext's digest is wrong."""
        if self._finished:
            raise DecryptError("layer cipher finalized twice")
        self._finished = True
        self._decryptor.finalize()
        if not hmac.compare_digest(self._mac.digest(), self._expected_mac):
            raise DecryptError("layer HMAC mismatch: the encrypted layer was altered")
        if self._hash is not None:
            _, expected = self._digest.split(":", 1)
            if not hmac.compare_digest(self._hash.hexdigest(), expected):
                raise DecryptError(f"decrypted layer does not match its digest {self._digest}")


def _unwrap(protocol: WrapScheme, blob: bytes, keys: DecryptKeys) -> bytes:
    if protocol is WrapScheme.JWE:
        return jwe.decrypt(blob, keys.private_keys)
    if protocol is WrapScheme.PKCS7:
        rsa_keys = [k for k in keys.private_keys if isinstance(k, RSAPrivateKey)]
        return pkcs7.decrypt(blob, rsa_keys, keys.certificates)

    return pgp.decrypt(blob, keys.gpg_keyrings)


def _has_keys_for(protocol: WrapScheme, keys: DecryptKeys) -> bool:
    if protocol is WrapScheme.PGP:
        return bool(keys.gpg_keyrings)
    if protocol is WrapScheme.PKCS7:
        return any(isinstance(k, RSAPrivateKey) for k in keys.private_keys)
    return bool(keys.private_keys)


def _wrapped_keys(annotations: Mapping[str, str]) -> dict[WrapScheme, list[bytes]]:
    wrapped: dict[WrapScheme, list[bytes]] = {}
    for protocol in WrapScheme:
        value = annotations.get(KEYS_ANNOTATION_PREFIX + protocol.value)
        if value is None:
            continue
        # preWrapKeys joins one blob per wrapping with ","; empty items are skipped as in Go.
        blobs = [
            _b64decode(item, f"{protocol.value} keys annotation")
            for item in value.split(",")
            if item
        ]
        if blobs:
            wrapped[protocol] = blobs
    return wrapped


def _b64decode(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise DecryptError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError(f"{what} is not valid base64") from exc


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecryptError(f"{what} are not valid JSON") from exc
    if not isinstance(obj, dict):
        raise DecryptError(f"{what} are not a JSON object")
    return obj


def _field(obj: Mapping[str, Any], name: str) -> Any:
    # Go encoding/json: an exact key wins, otherwise keys match case-insensitively.
    if name in obj:
        return obj[name]
    for key, value in obj.items():
        if key.lower() == name:
            return value
    return None


def _b64_field(obj: Mapping[str, Any], name: str, what: str) -> bytes:
    value = _field(obj, name)
    if value is None:
        return b""
    return _b64decode(value, f"{what} field {name!r}")


def _cipher_options(obj: Mapping[str, Any], what: str) -> dict[str, bytes]:
    options = _field(obj, "cipheroptions")
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise DecryptError(f"{what} cipheroptions is not a JSON object")
    return {
        str(key): _b64decode(value, f"{what} cipher option {key!r}")
        for key, value in options.items()
        if value is not None
    }
