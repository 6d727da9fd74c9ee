"""Encryption of layers for ocicrypt recipients: the other direction of `ocicrypt`.

Owns `LayerEncrypter` (AES-256-CTR with a random key and nonce, HMAC-SHA256 over the
ciphertext, the plain blob's digest) and the annotations it produces: the private options
wrapped for every JWE and PKCS7 recipient, and the public options (docs/oci-image-notes.md §3). A
recipient is `jwe:<public key file>` (PEM/DER SubjectPublicKeyInfo or x509 certificate,
RSA or EC) or `pkcs7:<x509 certificate file>`, as skopeo's `--encryption-key`. PGP
recipients are not offered. Does I/O only in `load_encrypt_recipients`, which reads the
recipient files; bad recipients are InvalidArgument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from cryptography.x509 import Certificate

from ocirt.errors import InvalidArgument
from ocirt.image.ocicrypt import jwe as ocicrypt_jwe
from ocirt.image.ocicrypt import pkcs7 as ocicrypt_pkcs7
from ocirt.image.ocicrypt.jwk import PublicKey
from ocirt.image.ocicrypt.layer import (
    CIPHER_AES_CTR_HMAC_SHA256,
    ENCRYPTED_SUFFIX,
    KEYS_ANNOTATION_PREFIX,
    PUBOPTS_ANNOTATION,
    WrapScheme,
)

_RECIPIENT_FILE_MAX = 1 << 20


@dataclass(frozen=True, slots=True)
class EncryptRecipients:
    """Who may open the layers: JWE public keys and PKCS7 certificates."""

    jwe: tuple[PublicKey, ...] = ()
    pkcs7: tuple[Certificate, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.jwe or self.pkcs7)


def encrypted_media_type(media_type: str) -> str:
    if media_type.endswith(ENCRYPTED_SUFFIX):
        raise InvalidArgument(f"layer media type {media_type} is already encrypted")
    return media_type + ENCRYPTED_SUFFIX


def load_encrypt_recipients(specs: Sequence[str]) -> EncryptRecipients:
    """Read `jwe:<file>` and `pkcs7:<file>` recipients."""

    jwe: list[PublicKey] = []
    pkcs7: list[Certificate] = []
    for spec in specs:
        scheme, sep, path = spec.partition(":")
        if not sep or not path or scheme not in ("jwe", "pkcs7"):
            raise InvalidArgument(
                f"invalid encryption recipient {spec!r}: use jwe:<public key> or pkcs7:<cert>"
            )
        data = _read(path)
        if scheme == "pkcs7":
            cert = _certificate(data, path)
            if not isinstance(cert.public_key(), RSAPublicKey):
                raise InvalidArgument(f"recipient {path}: PKCS7 recipients must have RSA keys")
            pkcs7.append(cert)
        else:
            jwe.append(_public_key(data, path))
    return EncryptRecipients(tuple(jwe), tuple(pkcs7))


class LayerEncrypter:
    """Streams a layer blob through AES-256-CTR; `finalize` returns the `enc.*` annotations.

    The private options carry the digest of the whole plain blob, so they are wrapped only
    once the stream has ended, as ocicrypt's finalizer does.
    """

    __slots__ = ("_encryptor", "_finished", "_hash", "_mac", "_nonce", "_recipients", "_symkey")

    def __init__(self, recipients: EncryptRecipients) -> None:
        if recipients.empty:
            raise InvalidArgument("no encryption recipients given")
        self._recipients = recipients
        self._symkey = os.urandom(32)
        self._nonce = os.urandom(16)
        self._encryptor: CipherContext = Cipher(
            algorithms.AES(self._symkey), modes.CTR(self._nonce)
        ).encryptor()
        self._mac = hmac.new(self._symkey, digestmod=hashlib.sha256)
        self._hash = hashlib.sha256()
        self._finished = False

    def update(self, chunk: bytes) -> bytes:
        if self._finished:
            raise InvalidArgument("layer encrypter used after finalize")
        self._hash.update(chunk)
        encrypted = self._encryptor.update(chunk)
        self._mac.update(encrypted)
        return encrypted

    def finalize(self) -> dict[str, str]:
        if self._finished:
            raise InvalidArgument("layer encrypter finalized twice")
        self._finished = True
        self._encryptor.finalize()
        private = _go_json(
            {
                "symkey": _b64(self._symkey),
                "digest": "sha256:" + self._hash.hexdigest(),
                "cipheroptions": {"nonce": _b64(self._nonce)},
            }
        )
        public = _go_json(
            {
                "cipher": CIPHER_AES_CTR_HMAC_SHA256,
                "hmac": _b64(self._mac.digest()),
                "cipheroptions": {},
            }
        )
        annotations = {}
        if self._recipients.jwe:
            blob = ocicrypt_jwe.encrypt(private, self._recipients.jwe)
            annotations[KEYS_ANNOTATION_PREFIX + WrapScheme.JWE.value] = _b64(blob)
        if self._recipients.pkcs7:
            blob = ocicrypt_pkcs7.encrypt(private, self._recipients.pkcs7)
            annotations[KEYS_ANNOTATION_PREFIX + WrapScheme.PKCS7.value] = _b64(blob)
        annotations[PUBOPTS_ANNOTATION] = _b64(public)
        return annotations


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _go_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_RECIPIENT_FILE_MAX + 1)
    except OSError as exc:
        raise InvalidArgument(f"cannot read recipient file {path}: {exc.strerror}") from exc
    if len(data) > _RECIPIENT_FILE_MAX:
        raise InvalidArgument(f"recipient file {path} is too large")
    return data


def _certificate(data: bytes, path: str) -> Certificate:
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InvalidArgument(f"recipient file {path} is not an x509 certificate") from exc


def _public_key(data: bytes, path: str) -> PublicKey:
    key: object
    if b"-----BEGIN CERTIFICATE-----" in data or _is_cert(data):
        key = _certificate(data, path).public_key()
    else:
        try:
            key = load_pem_public_key(data) if b"-----BEGIN" in data else load_der_public_key(data)
        except (ValueError, TypeError) as exc:
            raise InvalidArgument(f"recipient file {path} is not a public key") from exc
    if not isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
        raise InvalidArgument(f"recipient file {path}: only RSA and EC keys can be JWE recipients")
    return key


def _is_cert(data: bytes) -> bool:
    try:
        x509.load_der_x509_certificate(data)
    except ValueError:
        return False
    return True
