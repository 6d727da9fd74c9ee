"""JWE key unwrapping for ocicrypt's `org.opencontainers.image.enc.keys.jwe` (RFC 7516).

ocicrypt wraps the layer's private options with go-jose `NewMultiEncrypter`, which writes
the flattened JSON form for one recipient and the general form for several
(docs/oci-image-notes.md §3 "JWE"). This module decrypts those (and the compact form) with
cryptography's primitives: key management RSA-OAEP, RSA-OAEP-256, ECDH-ES and
ECDH-ES+A128KW/A192KW/A256KW (RFC 7518 §4.3, §4.6); content A128/192/256GCM and
A128CBC-HS256/A192CBC-HS384/A256CBC-HS512 (§5). Other algorithms (dir, AES key wrap, PBES2) are
refused: a layer must be opened by a private key. JWKs themselves are `jwk`. Also writes JWEs for
`encrypt`. Pure: no I/O but randomness.
"""

from __future__ import annotations

import hmac
import json
import os
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sympadding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from ocirt.errors import DecryptError, InvalidArgument
from ocirt.image.ocicrypt.jwk import (
    CURVE_SIZE,
    PrivateKey,
    PublicKey,
    b64url,
    b64url_decode,
    curve_name,
    ec_public_jwk,
    ec_public_key_from_jwk,
)

_KEY_ALGS = frozenset(
    {"RSA-OAEP", "RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW"}
)
# Content-encryption key length in bytes for each `enc` (RFC 7518 §5.1).
_ENC_KEY_LEN = {
    "A128GCM": 16,
    "A192GCM": 24,
    "A256GCM": 32,
    "A128CBC-HS256": 32,
    "A192CBC-HS384": 48,
    "A256CBC-HS512": 64,
}
# Private options are a few hundred bytes; bound what a `zip: DEF` payload may inflate to.
_MAX_PLAINTEXT = 1 << 20


@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient of a JWE: its merged header and wrapped content key."""

    header: Mapping[str, Any]
    encrypted_key: bytes


@dataclass(frozen=True, slots=True)
class Jwe:
    """A parsed JWE; `aad` is what the content tag covers (RFC 7516 §5.1 step 14)."""

    recipients: tuple[Recipient, ...]
    iv: bytes
    ciphertext: bytes
    tag: bytes
    aad: bytes


def parse(blob: bytes) -> Jwe:
    """Parse the compact, flattened JSON or general JSON serialization. Pure."""
    text = _text(blob)
    if not text.lstrip().startswith("{"):
        return _parse_compact(text)
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise DecryptError("JWE is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise DecryptError("JWE is not a JSON object")
    protected_b64 = obj.get("protected", "")
    protected = _json_object(b64url_decode(protected_b64, "protected header"), "protected")
    shared = _merge(protected, _object_or_empty(obj.get("unprotected"), "unprotected"))
    if "recipients" in obj:
        entries = obj["recipients"]
        if not isinstance(entries, list) or not entries:
            raise DecryptError("JWE recipients is not a non-empty list")
    else:
        entries = [{"header": obj.get("header"), "encrypted_key": obj.get("encrypted_key", "")}]
    recipients = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise DecryptError("JWE recipient is not a JSON object")
        header = _merge(shared, _object_or_empty(entry.get("header"), "recipient header"))
        key = b64url_decode(entry.get("encrypted_key", ""), "encrypted_key")
        recipients.append(Recipient(header, key))
    aad = protected_b64.encode("ascii")
    if "aad" in obj:
        b64url_decode(obj["aad"], "aad")
        aad += b"." + obj["aad"].encode("ascii")
    return Jwe(
        tuple(recipients),
        b64url_decode(obj.get("iv", ""), "iv"),
        b64url_decode(obj.get("ciphertext", ""), "ciphertext"),
        b64url_decode(obj.get("tag", ""), "tag"),
        aad,
    )


def decrypt(blob: bytes, keys: Sequence[PrivateKey]) -> bytes:
    """The plaintext of `blob`, opened by the first key that works.

    Raises DecryptError if the JWE is malformed or no key opens it.
    """
    jwe = parse(blob)
    problems: list[str] = []
    for recipient in jwe.recipients:
        try:
            plaintext = _open_recipient(recipient, jwe, keys)
        except DecryptError as exc:
            problems.append(exc.message)
            continue
        if plaintext is not None:
            return plaintext
    detail = f" ({'; '.join(dict.fromkeys(problems))})" if problems else ""
    raise DecryptError(f"no key opens the JWE{detail}")


def _open_recipient(recipient: Recipient, jwe: Jwe, keys: Sequence[PrivateKey]) -> bytes | None:
    header = recipient.header
    alg, enc = header.get("alg"), header.get("enc")
    if alg not in _KEY_ALGS:
        raise DecryptError(f"unsupported JWE key algorithm {alg!r}")
    if enc not in _ENC_KEY_LEN:
        raise DecryptError(f"unsupported JWE content encryption {enc!r}")
    if "crit" in header:
        raise DecryptError("JWE has critical header parameters ocirt does not know")
    for key in keys:
        cek = _unwrap_cek(alg, enc, header, recipient.encrypted_key, key)
        if cek is None:
            continue
        plaintext = _decrypt_content(enc, cek, jwe)
        if plaintext is not None:
            return _inflate(header.get("zip"), plaintext)
    return None


def _unwrap_cek(
    alg: str, enc: str, header: Mapping[str, Any], wrapped: bytes, key: PrivateKey
) -> bytes | None:
    if alg.startswith("RSA-OAEP"):
        if not isinstance(key, rsa.RSAPrivateKey):
            return None
        digest: hashes.HashAlgorithm = hashes.SHA256() if alg == "RSA-OAEP-256" else hashes.SHA1()
        try:
            cek = key.decrypt(wrapped, padding.OAEP(padding.MGF1(digest), digest, None))
        except ValueError:
            return None
        return cek if len(cek) == _ENC_KEY_LEN[enc] else None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if CURVE_SIZE.get(curve_name(key.curve)) is None:
        return None
    epk_header = header.get("epk")
    if isinstance(epk_header, dict) and epk_header.get("crv") != curve_name(key.curve):
        return None  # a recipient for another curve: not this key's
    epk = ec_public_key_from_jwk(epk_header, key.curve)
    shared = key.exchange(ec.ECDH(), epk)
    direct = alg == "ECDH-ES"
    length = _ENC_KEY_LEN[enc] if direct else int(alg[-5:-2]) // 8
    derived = _concat_kdf(shared, enc if direct else alg, header, length)
    if direct:
        return derived if not wrapped else None
    try:
        cek = aes_key_unwrap(derived, wrapped)
    except (InvalidUnwrap, ValueError):
        return None
    return cek if len(cek) == _ENC_KEY_LEN[enc] else None


def _concat_kdf(shared: bytes, alg_id: str, header: Mapping[str, Any], length: int) -> bytes:
    # RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A) with SHA-256 and length-prefixed fields.
    apu = b64url_decode(header["apu"], "apu") if "apu" in header else b""
    apv = b64url_decode(header["apv"], "apv") if "apv" in header else b""
    other = b"".join(
        struct.pack(">I", len(part)) + part for part in (alg_id.encode(), apu, apv)
    ) + struct.pack(">I", length * 8)
    return ConcatKDFHash(hashes.SHA256(), length, other).derive(shared)


def _decrypt_content(enc: str, cek: bytes, jwe: Jwe) -> bytes | None:
    if enc.endswith("GCM"):
        if len(jwe.iv) != 12 or len(jwe.tag) != 16:
            raise DecryptError("JWE GCM iv or tag has the wrong length")
        try:
            return AESGCM(cek).decrypt(jwe.iv, jwe.ciphertext + jwe.tag, jwe.aad)
        except InvalidTag:
            return None
    # AES_CBC_HMAC_SHA2 (RFC 7518 §5.2.2): MAC key first, then the encryption key.
    half = len(cek) // 2
    mac_key, enc_key = cek[:half], cek[half:]
    digest = {16: "sha256", 24: "sha384", 32: "sha512"}[half]
    if len(jwe.iv) != 16:
        raise DecryptError("JWE CBC iv has the wrong length")
    mac_input = jwe.aad + jwe.iv + jwe.ciphertext + struct.pack(">Q", len(jwe.aad) * 8)
    expected = hmac.digest(mac_key, mac_input, digest)[:half]
    if not hmac.compare_digest(expected, jwe.tag):
        return None
    try:
        decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(jwe.iv)).decryptor()
        padded = decryptor.update(jwe.ciphertext) + decryptor.finalize()
        unpadder = sympadding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError as exc:
        raise DecryptError("JWE CBC content is badly padded") from exc


def _inflate(zip_alg: object, data: bytes) -> bytes:
    if zip_alg is None:
        return data
    if zip_alg != "DEF":
        raise DecryptError(f"unsupported JWE compression {zip_alg!r}")
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, _MAX_PLAINTEXT)
    except zlib.error as exc:
        raise DecryptError("JWE compressed content is corrupt") from exc
    if inflater.unconsumed_tail:
        raise DecryptError("JWE compressed content is too large")
    return out


def _parse_compact(text: str) -> Jwe:
    parts = text.strip().split(".")
    if len(parts) != 5:
        raise DecryptError("JWE is neither JSON nor a five-part compact serialization")
    header = _json_object(b64url_decode(parts[0], "protected header"), "protected")
    return Jwe(
        (Recipient(header, b64url_decode(parts[1], "encrypted_key")),),
        b64url_decode(parts[2], "iv"),
        b64url_decode(parts[3], "ciphertext"),
        b64url_decode(parts[4], "tag"),
        parts[0].encode("ascii"),
    )


def _text(blob: bytes) -> str:
    try:
        text = blob.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DecryptError("JWE is not ASCII text") from exc
    return text


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    if not data:
        return {}
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecryptError(f"JWE {what} header is not JSON") from exc
    if not isinstance(obj, dict):
        raise DecryptError(f"JWE {what} header is not a JSON object")
    return obj


def _object_or_empty(value: object, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecryptError(f"JWE {what} is not a JSON object")
    return value


def _merge(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    # RFC 7516 §7.2.1: the header sets must be disjoint.
    clash = first.keys() & second.keys()
    if clash:
        raise DecryptError(f"JWE header parameters given twice: {sorted(clash)}")
    return {**first, **second}


def encrypt(plaintext: bytes, recipients: Sequence[PublicKey]) -> bytes:
    """A JWE of `plaintext` for every recipient, shaped as go-jose writes it for ocicrypt.

    RSA keys get RSA-OAEP and EC keys ECDH-ES+A256KW (what ocicrypt picks for PEM keys);
    content A256GCM. One recipient gives the flattened JSON form, several the general form.
    """

    if not recipients:
        raise InvalidArgument("a JWE needs at least one recipient")
    cek = os.urandom(32)
    entries: list[tuple[dict[str, Any], bytes]] = []
    for public in recipients:
        if isinstance(public, rsa.RSAPublicKey):
            sha1 = hashes.SHA1()
            wrapped = public.encrypt(cek, padding.OAEP(padding.MGF1(sha1), sha1, None))
            entries.append(({"alg": "RSA-OAEP"}, wrapped))
            continue
        if isinstance(public, ec.EllipticCurvePublicKey) and curve_name(public.curve):
            ephemeral = ec.generate_private_key(public.curve)
            header: dict[str, Any] = {
                "alg": "ECDH-ES+A256KW",
                "epk": ec_public_jwk(ephemeral.public_key()),
            }
            kek = _concat_kdf(ephemeral.exchange(ec.ECDH(), public), header["alg"], header, 32)
            entries.append((header, aes_key_wrap(kek, cek)))
            continue
        raise InvalidArgument(f"cannot wrap a layer key for a {type(public).__name__}")
    flattened = len(entries) == 1
    protected = {"enc": "A256GCM", **(entries[0][0] if flattened else {})}
    protected_b64 = b64url(json.dumps(protected, separators=(",", ":")).encode())
    iv = os.urandom(12)
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected_b64.encode("ascii"))
    body: dict[str, Any] = {"protected": protected_b64}
    if flattened:
        body["encrypted_key"] = b64url(entries[0][1])
    else:
        body["recipients"] = [
            {"header": header, "encrypted_key": b64url(key)} for header, key in entries
        ]
    body.update(iv=b64url(iv), ciphertext=b64url(sealed[:-16]), tag=b64url(sealed[-16:]))
    return json.dumps(body, separators=(",", ":")).encode()
