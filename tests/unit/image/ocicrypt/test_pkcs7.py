"""PKCS7 unwrapping against EnvelopedData DER built here the way Go's pkcs7 packages do."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sympadding
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt import pkcs7 as ocicrypt_pkcs7

PLAINTEXT = b'{"symkey":"AAAA","digest":"","cipheroptions":{}}'


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def seq(*items: bytes) -> bytes:
    return der(0x30, b"".join(items))


def integer(value: int) -> bytes:
    return der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def recipient_info(cert: x509.Certificate, cek: bytes, oaep: bool = False) -> bytes:
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    if oaep:
        sha256 = seq(oid("2.16.840.1.101.3.4.2.1"))
        params = seq(der(0xA0, sha256), der(0xA1, seq(oid("1.2.840.113549.1.1.8"), sha256)))
        algorithm = seq(oid(ocicrypt_pkcs7.OID_RSAES_OAEP), params)
        h = hashes.SHA256()
        wrapped = public.encrypt(cek, padding.OAEP(padding.MGF1(h), h, None))
    else:
        algorithm = seq(oid(ocicrypt_pkcs7.OID_RSA_ENCRYPTION), der(0x05, b""))
        wrapped = public.encrypt(cek, padding.PKCS1v15())
    rid = seq(cert.issuer.public_bytes(), integer(cert.serial_number))
    return seq(integer(0), rid, algorithm, der(0x04, wrapped))


def envelope(
    certs: list[x509.Certificate],
    plaintext: bytes = PLAINTEXT,
    style: str = "smallstep",
    oaep: bool = False,
    cbc_oid: str = "2.16.840.1.101.3.4.1.42",
) -> bytes:
    """EnvelopedData as smallstep (content [0] primitive) or fullsailor ([0]{OCTET STRING})
    write it, with Go's tag-16 GCM parameters; or RFC 5084 GCM, or AES-256-CBC."""
    if style == "cbc":
        cek, iv = os.urandom(32), os.urandom(16)
        padder = sympadding.PKCS7(128).padder()
        encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
        content = encryptor.update(padder.update(plaintext) + padder.finalize())
        content += encryptor.finalize()
        algorithm = seq(oid(cbc_oid), der(0x04, iv))
        encrypted = der(0x80, content)
    else:
        cek, nonce = os.urandom(16), os.urandom(12)
        content = AESGCM(cek).encrypt(nonce, plaintext, None)
        if style == "rfc5084":
            params = seq(der(0x04, nonce), integer(16))
        else:
            params = der(0x10, seq(der(0x84, nonce), integer(16)))
        algorithm = seq(oid("2.16.840.1.101.3.4.1.6"), params)
        encrypted = der(0xA0, der(0x04, content)) if style == "fullsailor" else der(0x80, content)
    infos = der(0x31, b"".join(recipient_info(c, cek, oaep) for c in certs))
    eci = seq(oid("1.2.840.113549.1.7.1"), algorithm, encrypted)
    enveloped = seq(integer(0), infos, eci)
    return seq(oid(ocicrypt_pkcs7.OID_ENVELOPED_DATA), der(0xA0, enveloped))


@pytest.fixture(scope="module")
def pair(
    self_signed: Callable[..., x509.Certificate],
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, self_signed(key, "one")


@pytest.fixture(scope="module")
def pair2(
    self_signed: Callable[..., x509.Certificate],
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, self_signed(key, "two")


@pytest.mark.parametrize("style", ["smallstep", "fullsailor", "rfc5084", "cbc"])
def test_content_forms(pair: tuple[rsa.RSAPrivateKey, x509.Certificate], style: str) -> None:
    key, cert = pair
    blob = envelope([cert], style=style)
    assert ocicrypt_pkcs7.decrypt(blob, [key], [cert]) == PLAINTEXT
    assert ocicrypt_pkcs7.decrypt(blob, [key], []) == PLAINTEXT


def test_go_parameters_are_what_the_reference_shows(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    blob = envelope([pair[1]])
    # docs/oci-image-notes.md §3: `10 13 30 11 84 0c <12-byte nonce> 02 01 10`.
    start = blob.index(bytes.fromhex("1013301184 0c".replace(" ", "")))
    assert blob[start + 18 : start + 21] == bytes.fromhex("020110")
    assert ocicrypt_pkcs7.parse(blob).content_algorithm == "2.16.840.1.101.3.4.1.6"


def test_oaep_key_transport(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, cert = pair
    assert ocicrypt_pkcs7.decrypt(envelope([cert], oaep=True), [key], [cert]) == PLAINTEXT


def test_two_recipients_each_key_opens(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
    pair2: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    blob = envelope([pair[1], pair2[1]])
    assert len(ocicrypt_pkcs7.parse(blob).recipients) == 2
    assert ocicrypt_pkcs7.decrypt(blob, [pair2[0]], [pair2[1]]) == PLAINTEXT
    assert ocicrypt_pkcs7.decrypt(blob, [pair[0]], [pair2[1]]) == PLAINTEXT


def test_recipient_matching_the_certificate_is_tried_first(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
    pair2: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    parsed = ocicrypt_pkcs7.parse(envelope([pair[1], pair2[1]]))
    ordered = ocicrypt_pkcs7._pairs(parsed.recipients, [pair[0], pair2[0]], [pair2[1]])
    assert ordered[0] == (parsed.recipients[1], pair2[0])
    assert len(ordered) == 4


def test_wrong_key_is_refused(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
    pair2: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    for style in ("smallstep", "cbc"):
        blob = envelope([pair[1]], style=style)
        with pytest.raises(DecryptError, match="no key opens the PKCS7 envelope"):
            ocicrypt_pkcs7.decrypt(blob, [pair2[0]], [pair2[1]])


def test_tampered_content_is_refused(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, cert = pair
    blob = bytearray(envelope([cert]))
    blob[-1] ^= 0x01
    with pytest.raises(DecryptError):
        ocicrypt_pkcs7.decrypt(bytes(blob), [key], [cert])


def test_every_truncation_and_byte_flip_is_a_decrypt_error(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, cert = pair
    blob = envelope([cert])
    for end in range(len(blob)):
        with pytest.raises(DecryptError):
            ocicrypt_pkcs7.decrypt(blob[:end], [key], [cert])
    for pos in range(0, len(blob), 3):
        flipped = bytearray(blob)
        flipped[pos] ^= 0xFF
        try:
            result = ocicrypt_pkcs7.decrypt(bytes(flipped), [key], [cert])
        except DecryptError:
            continue
        assert result == PLAINTEXT  # only a flip in a field nobody checks (e.g. a version)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x30",
        b"\x30\x85\x00\x00\x00\x00\x01",
        b"\x30\x80\x00\x00",
        b"\x1f\x01\x00",
        seq(oid("1.2.840.113549.1.7.1"), der(0xA0, seq())),
        seq(oid(ocicrypt_pkcs7.OID_ENVELOPED_DATA), der(0xA0, seq(integer(0)))),
        seq(der(0x06, b"\x80"), der(0xA0, b"")),
    ],
)
def test_malformed_der_is_a_decrypt_error(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate], blob: bytes
) -> None:
    with pytest.raises(DecryptError):
        ocicrypt_pkcs7.decrypt(blob, [pair[0]], [pair[1]])


def test_unsupported_content_cipher(pair: tuple[rsa.RSAPrivateKey, x509.Certificate]) -> None:
    key, cert = pair
    blob = envelope([cert], style="cbc", cbc_oid="1.2.840.113549.3.7")  # des-ede3-cbc
    with pytest.raises(DecryptError, match=r"unsupported cipher 1\.2\.840\.113549\.3\.7"):
        ocicrypt_pkcs7.decrypt(blob, [key], [cert])


def test_oid_decoding() -> None:
    tlv = ocicrypt_pkcs7.read_tlv(oid("2.16.840.1.101.3.4.1.46"))[0]
    assert ocicrypt_pkcs7.decode_oid(tlv) == "2.16.840.1.101.3.4.1.46"
    tlv = ocicrypt_pkcs7.read_tlv(oid("1.2.840.113549.1.7.3"))[0]
    assert ocicrypt_pkcs7.decode_oid(tlv) == ocicrypt_pkcs7.OID_ENVELOPED_DATA


def test_certificate_key_round_trip_with_der_cert(
    pair: tuple[rsa.RSAPrivateKey, x509.Certificate],
) -> None:
    key, cert = pair
    der_cert = x509.load_der_x509_certificate(cert.public_bytes(serialization.Encoding.DER))
    assert ocicrypt_pkcs7.decrypt(envelope([cert]), [key], [der_cert]) == PLAINTEXT
