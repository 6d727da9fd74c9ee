"""PKCS7 key unwrapping for ocicrypt's `org.opencontainers.image.enc.keys.pkcs7`.

The blob is a DER CMS EnvelopedData (RFC 5652 §6) as Go's pkcs7 packages write it
(docs/oci-image-notes.md §3 "PKCS7"): RSA key transport of a 16-byte key, content AES-128-GCM whose
parameters are a *primitive* tag-16 wrapper around SEQUENCE { [4] nonce, INTEGER 16 }, and
the encrypted content either `[0]` primitive or `[0]` constructed around OCTET STRINGs.
OpenSSL and cryptography's pkcs7_decrypt_der refuse those parameters (and GCM content), so
this module reads the few DER structures it needs itself. Also accepted, as ocicrypt's
decrypter does: RSAES-OAEP key transport, standard GCMParameters, AES-CBC content.
Also writes that form for `encrypt`. Pure: no I/O but randomness.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sympadding
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.padding import OAEP
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509 import Certificate

from ocirt.errors import DecryptError, InvalidArgument

OID_DATA = "1.2.840.113549.1.7.1"
OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_AES128_GCM = "2.16.840.1.101.3.4.1.6"
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
OID_MGF1 = "1.2.840.113549.1.1.8"
_GCM = {"2.16.840.1.101.3.4.1.6": 16, "2.16.840.1.101.3.4.1.26": 24, "2.16.840.1.101.3.4.1.46": 32}
_CBC = {"2.16.840.1.101.3.4.1.2": 16, "2.16.840.1.101.3.4.1.22": 24, "2.16.840.1.101.3.4.1.42": 32}
_HASHES = {
    "1.3.14.3.2.26": "SHA1",
    "2.16.840.1.101.3.4.2.1": "SHA256",
    "2.16.840.1.101.3.4.2.2": "SHA384",
    "2.16.840.1.101.3.4.2.3": "SHA512",
}

_SEQUENCE = 0x30
_SET = 0x31
_INTEGER = 0x02
_OCTET_STRING = 0x04
_OID = 0x06


@dataclass(frozen=True, slots=True)
class Tlv:
    """One DER element: its identifier octet, its contents and its whole encoding."""

    tag: int
    contents: bytes
    encoding: bytes

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def children(self) -> list[Tlv]:
        return list(iter_tlvs(self.contents))


@dataclass(frozen=True, slots=True)
class KeyTransport:
    """A KeyTransRecipientInfo: who it is for and the wrapped content key."""

    issuer: bytes | None
    serial: int | None
    algorithm: str
    parameters: Tlv | None
    encrypted_key: bytes


@dataclass(frozen=True, slots=True)
class EnvelopedData:
    recipients: tuple[KeyTransport, ...]
    content_algorithm: str
    content_parameters: Tlv | None
    encrypted_content: bytes


def read_tlv(data: bytes, pos: int = 0) -> tuple[Tlv, int]:
    """The DER element at `pos` and the offset after it. Definite lengths only."""
    if pos + 2 > len(data):
        raise DecryptError("PKCS7 data is truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DecryptError("PKCS7 data uses a high tag number")
    first = data[pos + 1]
    head = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise DecryptError("PKCS7 data has an unsupported length encoding")
        if head + count > len(data):
            raise DecryptError("PKCS7 data is truncated")
        length = int.from_bytes(data[head : head + count], "big")
        head += count
    end = head + length
    if end > len(data):
        raise DecryptError("PKCS7 data is truncated")
    return Tlv(tag, data[head:end], data[pos:end]), end


def iter_tlvs(data: bytes) -> Iterator[Tlv]:
    pos = 0
    while pos < len(data):
        tlv, pos = read_tlv(data, pos)
        yield tlv


def decode_oid(tlv: Tlv) -> str:
    if tlv.tag != _OID or not tlv.contents or tlv.contents[-1] & 0x80:
        raise DecryptError("PKCS7 data has a malformed object identifier")
    arcs: list[int] = []
    value = 0
    for byte in tlv.contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


def parse(blob: bytes) -> EnvelopedData:
    """Parse a ContentInfo holding EnvelopedData. Pure."""
    info, end = read_tlv(blob)
    if end != len(blob) or info.tag != _SEQUENCE:
        raise DecryptError("PKCS7 data is not one DER SEQUENCE")
    parts = info.children()
    if len(parts) != 2 or decode_oid(parts[0]) != OID_ENVELOPED_DATA or parts[1].tag != 0xA0:
        raise DecryptError("PKCS7 data is not CMS EnvelopedData")
    enveloped = _one(parts[1].children(), _SEQUENCE, "EnvelopedData")
    fields = [f for f in enveloped.children() if f.tag not in (0xA0, 0xA1)]  # originator, attrs
    if len(fields) != 3 or fields[0].tag != _INTEGER or fields[1].tag != _SET:
        raise DecryptError("PKCS7 EnvelopedData is malformed")
    recipients = tuple(_key_transport(ri) for ri in fields[1].children() if ri.tag == _SEQUENCE)
    content = fields[2].children()
    if len(content) < 2 or content[1].tag != _SEQUENCE:
        raise DecryptError("PKCS7 EncryptedContentInfo is malformed")
    algorithm, parameters = _algorithm(content[1])
    return EnvelopedData(recipients, algorithm, parameters, _encrypted_content(content[2:]))


def decrypt(
    blob: bytes, keys: Sequence[RSAPrivateKey], certificates: Sequence[Certificate]
) -> bytes:
    """The content of `blob`, opened by the first RSA key that works.

    ocicrypt picks the RecipientInfo through the key's certificate; ocirt tries those pairs
    first and then every other pair, so the certificate is optional. A wrong key is caught
    by the content's authentication (GCM) or, for CBC, by the key length and padding.
    """
    enveloped = parse(blob)
    if not enveloped.recipients:
        raise DecryptError("PKCS7 data has no key-transport recipient")
    for recipient, key in _pairs(enveloped.recipients, keys, certificates):
        cek = _unwrap(recipient, key)
        if cek is None:
            continue
        plaintext = _decrypt_content(enveloped, cek)
        if plaintext is not None:
            return plaintext
    raise DecryptError("no key opens the PKCS7 envelope")


def _pairs(
    recipients: Sequence[KeyTransport],
    keys: Sequence[RSAPrivateKey],
    certificates: Sequence[Certificate],
) -> list[tuple[KeyTransport, RSAPrivateKey]]:
    matched: list[tuple[int, int]] = []
    for cert in certificates:
        issuer = cert.issuer.public_bytes()
        numbers = _public_numbers(cert)
        for r, recipient in enumerate(recipients):
            if recipient.issuer != issuer or recipient.serial != cert.serial_number:
                continue
            matched.extend(
                (r, k)
                for k, key in enumerate(keys)
                if key.public_key().public_numbers() == numbers and (r, k) not in matched
            )
    rest = [
        (r, k) for r in range(len(recipients)) for k in range(len(keys)) if (r, k) not in matched
    ]
    return [(recipients[r], keys[k]) for r, k in matched + rest]


def _public_numbers(cert: Certificate) -> object:
    public = cert.public_key()
    return public.public_numbers() if isinstance(public, RSAPublicKey) else None


def _unwrap(recipient: KeyTransport, key: RSAPrivateKey) -> bytes | None:
    pad: padding.AsymmetricPadding
    if recipient.algorithm == OID_RSA_ENCRYPTION:
        pad = padding.PKCS1v15()
    elif recipient.algorithm == OID_RSAES_OAEP:
        pad = _oaep(recipient.parameters)
    else:
        return None
    try:
        return key.decrypt(recipient.encrypted_key, pad)
    except ValueError:
        return None


def _oaep(parameters: Tlv | None) -> OAEP:
    # RFC 4055 §4.1: hashAlgorithm [0] and maskGenAlgorithm [1] default to SHA-1.
    hash_name, mgf_hash_name = "SHA1", "SHA1"
    if parameters is not None and parameters.tag == _SEQUENCE:
        for field in parameters.children():
            if field.tag == 0xA0:
                hash_name = _hash_name(_one(field.children(), _SEQUENCE, "OAEP hash"))
            elif field.tag == 0xA1:
                mgf = _one(field.children(), _SEQUENCE, "OAEP MGF").children()
                if len(mgf) != 2 or decode_oid(mgf[0]) != OID_MGF1:
                    raise DecryptError("PKCS7 OAEP uses an unsupported mask generation")
                mgf_hash_name = _hash_name(mgf[1])
            elif field.tag == 0xA2:
                raise DecryptError("PKCS7 OAEP labels are not supported")
    digest = getattr(hashes, hash_name)()
    return padding.OAEP(padding.MGF1(getattr(hashes, mgf_hash_name)()), digest, None)


def _hash_name(algorithm_identifier: Tlv) -> str:
    oid, _ = _algorithm(algorithm_identifier)
    if oid not in _HASHES:
        raise DecryptError(f"PKCS7 uses an unsupported hash {oid}")
    return _HASHES[oid]


def _decrypt_content(enveloped: EnvelopedData, cek: bytes) -> bytes | None:
    algorithm = enveloped.content_algorithm
    data = enveloped.encrypted_content
    if algorithm in _GCM:
        if len(cek) != _GCM[algorithm]:
            return None
        nonce, tag_len = _gcm_parameters(enveloped.content_parameters)
        if len(data) < tag_len:
            raise DecryptError("PKCS7 content is shorter than its GCM tag")
        body, tag = data[: len(data) - tag_len], data[len(data) - tag_len :]
        try:
            decryptor = Cipher(
                algorithms.AES(cek), modes.GCM(nonce, tag, min_tag_length=tag_len)
            ).decryptor()
            return decryptor.update(body) + decryptor.finalize()
        except InvalidTag:
            return None
    if algorithm in _CBC:
        if len(cek) != _CBC[algorithm]:
            return None
        params = enveloped.content_parameters
        if params is None or params.tag != _OCTET_STRING or len(params.contents) != 16:
            raise DecryptError("PKCS7 AES-CBC parameters are not a 16-byte IV")
        if not data or len(data) % 16:
            raise DecryptError("PKCS7 AES-CBC content is not whole blocks")
        cbc = Cipher(algorithms.AES(cek), modes.CBC(params.contents)).decryptor()
        padded = cbc.update(data) + cbc.finalize()
        unpadder = sympadding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            return None  # a wrong key garbles the padding
    raise DecryptError(f"PKCS7 content uses an unsupported cipher {algorithm}")


def _gcm_parameters(parameters: Tlv | None) -> tuple[bytes, int]:
    # Go writes RawValue{Tag: 16} (primitive) around the SEQUENCE; RFC 5084 §3.2 writes the
    # SEQUENCE itself. The nonce is OCTET STRING in the RFC and [4] in Go.
    if parameters is None:
        raise DecryptError("PKCS7 AES-GCM content has no parameters")
    inner = parameters
    if parameters.tag == 0x10:
        inner, end = read_tlv(parameters.contents)
        if end != len(parameters.contents):
            raise DecryptError("PKCS7 AES-GCM parameters are malformed")
    if inner.tag != _SEQUENCE:
        raise DecryptError("PKCS7 AES-GCM parameters are malformed")
    fields = inner.children()
    if not fields or fields[0].tag not in (_OCTET_STRING, 0x84) or len(fields) > 2:
        raise DecryptError("PKCS7 AES-GCM parameters are malformed")
    nonce = fields[0].contents
    tag_len = 12
    if len(fields) == 2:
        if fields[1].tag != _INTEGER:
            raise DecryptError("PKCS7 AES-GCM parameters are malformed")
        tag_len = int.from_bytes(fields[1].contents, "big", signed=True)
    if not 8 <= len(nonce) <= 64 or not 12 <= tag_len <= 16:
        raise DecryptError("PKCS7 AES-GCM nonce or tag length is out of range")
    return nonce, tag_len


def _key_transport(info: Tlv) -> KeyTransport:
    fields = info.children()
    if len(fields) != 4 or fields[0].tag != _INTEGER or fields[3].tag != _OCTET_STRING:
        raise DecryptError("PKCS7 RecipientInfo is malformed")
    issuer: bytes | None = None
    serial: int | None = None
    if fields[1].tag == _SEQUENCE:
        issuer_and_serial = fields[1].children()
        if len(issuer_and_serial) != 2 or issuer_and_serial[1].tag != _INTEGER:
            raise DecryptError("PKCS7 IssuerAndSerialNumber is malformed")
        issuer = issuer_and_serial[0].encoding
        serial = int.from_bytes(issuer_and_serial[1].contents, "big", signed=True)
    algorithm, parameters = _algorithm(fields[2])
    return KeyTransport(issuer, serial, algorithm, parameters, fields[3].contents)


def _algorithm(identifier: Tlv) -> tuple[str, Tlv | None]:
    if identifier.tag != _SEQUENCE:
        raise DecryptError("PKCS7 AlgorithmIdentifier is malformed")
    fields = identifier.children()
    if not fields or len(fields) > 2:
        raise DecryptError("PKCS7 AlgorithmIdentifier is malformed")
    parameters = fields[1] if len(fields) == 2 and fields[1].tag != 0x05 else None  # NULL
    return decode_oid(fields[0]), parameters


def _encrypted_content(rest: Sequence[Tlv]) -> bytes:
    if len(rest) != 1:
        raise DecryptError("PKCS7 envelope carries no encrypted content")
    content = rest[0]
    if content.tag == 0x80:
        return content.contents
    if content.tag == 0xA0:
        parts = content.children()
        if any(part.tag != _OCTET_STRING for part in parts):
            raise DecryptError("PKCS7 encrypted content is malformed")
        return b"".join(part.contents for part in parts)
    raise DecryptError("PKCS7 encrypted content is malformed")


def _one(items: Sequence[Tlv], tag: int, what: str) -> Tlv:
    if len(items) != 1 or items[0].tag != tag:
        raise DecryptError(f"PKCS7 {what} is malformed")
    return items[0]


def encrypt(plaintext: bytes, certificates: Sequence[Certificate]) -> bytes:
    """EnvelopedData for every RSA certificate, byte-compatible with Go's pkcs7 (smallstep).

    RSA PKCS#1 v1.5 key transport of a 16-byte key, AES-128-GCM content with Go's tag-16
    parameters and the content as `[0]` primitive, as ocicrypt writes it; Debian's skopeo
    1.9.3 reads this form (docs/oci-image-notes.md §3).
    """

    if not certificates:
        raise InvalidArgument("PKCS7 needs at least one recipient certificate")
    cek, nonce = os.urandom(16), os.urandom(12)
    infos = []
    for cert in certificates:
        public = cert.public_key()
        if not isinstance(public, RSAPublicKey):
            raise InvalidArgument("PKCS7 recipients must have RSA keys")
        issuer_and_serial = _der(
            _SEQUENCE, cert.issuer.public_bytes() + _der_integer(cert.serial_number)
        )
        infos.append(
            _der(
                _SEQUENCE,
                _der_integer(0)
                + issuer_and_serial
                + _der(_SEQUENCE, _der_oid(OID_RSA_ENCRYPTION) + b"\x05\x00")
                + _der(_OCTET_STRING, public.encrypt(cek, padding.PKCS1v15())),
            )
        )
    sealed = AESGCM(cek).encrypt(nonce, plaintext, None)
    parameters = _der(0x10, _der(_SEQUENCE, _der(0x84, nonce) + _der_integer(16)))
    content_info = _der(
        _SEQUENCE,
        _der_oid(OID_DATA)
        + _der(_SEQUENCE, _der_oid(OID_AES128_GCM) + parameters)
        + _der(0x80, sealed),
    )
    enveloped = _der(
        _SEQUENCE, _der_integer(0) + _der(_SET, b"".join(sorted(infos))) + content_info
    )
    return _der(_SEQUENCE, _der_oid(OID_ENVELOPED_DATA) + _der(0xA0, enveloped))


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + content


def _der_integer(value: int) -> bytes:
    return _der(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _der_oid(dotted: str) -> bytes:
    arcs = [int(arc) for arc in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        group = [arc & 0x7F]
        arc >>= 7
        while arc:
            group.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(group))
    return _der(_OID, bytes(out))
