"""JWE unwrapping against JWEs built here from cryptography's primitives (RFC 7516/7518)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import struct
import zlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import padding as sympadding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt import jwe as ocicrypt_jwe
from ocirt.image.ocicrypt import jwk as ocicrypt_jwk

PLAINTEXT = b'{"symkey":"AAAA","digest":"","cipheroptions":{}}'
ENC_LEN = {"A128GCM": 16, "A256GCM": 32, "A128CBC-HS256": 32, "A256CBC-HS512": 64}
CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48), "secp521r1": ("P-521", 66)}


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def concat_kdf(z: bytes, alg_id: str, length: int) -> bytes:
    other = b"".join(struct.pack(">I", len(p)) + p for p in (alg_id.encode(), b"", b""))
    other += struct.pack(">I", length * 8)
    out = b""
    counter = 1
    while len(out) < length:
        out += hashlib.sha256(struct.pack(">I", counter) + z + other).digest()
        counter += 1
    return out[:length]


def epk_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    crv, size = CURVES[key.curve.name]
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": crv,
        "x": b64u(numbers.x.to_bytes(size, "big")),
        "y": b64u(numbers.y.to_bytes(size, "big")),
    }


def make_jwe(
    plaintext: bytes,
    recipients: list[tuple[str, Any]],
    enc: str = "A256GCM",
    general: bool = False,
    extra_protected: dict[str, Any] | None = None,
) -> bytes:
    cek = os.urandom(ENC_LEN[enc])
    entries: list[tuple[dict[str, Any], bytes]] = []
    for alg, public in recipients:
        header: dict[str, Any] = {"alg": alg}
        if alg.startswith("RSA-OAEP"):
            h = hashes.SHA256() if alg == "RSA-OAEP-256" else hashes.SHA1()
            wrapped = public.encrypt(cek, padding.OAEP(padding.MGF1(h), h, None))
        else:
            ephemeral = ec.generate_private_key(public.curve)
            header["epk"] = epk_jwk(ephemeral.public_key())
            z = ephemeral.exchange(ec.ECDH(), public)
            if alg == "ECDH-ES":
                cek = concat_kdf(z, enc, ENC_LEN[enc])
                wrapped = b""
            else:
                wrapped = aes_key_wrap(concat_kdf(z, alg, int(alg[-5:-2]) // 8), cek)
        entries.append((header, wrapped))
    if len(entries) == 1 and not general:
        protected = {"enc": enc, **entries[0][0], **(extra_protected or {})}
    else:
        protected = {"enc": enc, **(extra_protected or {})}
    protected_b64 = b64u(json.dumps(protected).encode())
    aad = protected_b64.encode()
    if enc.endswith("GCM"):
        iv = os.urandom(12)
        sealed = AESGCM(cek).encrypt(iv, plaintext, aad)
        ciphertext, tag = sealed[:-16], sealed[-16:]
    else:
        half = len(cek) // 2
        iv = os.urandom(16)
        padder = sympadding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(cek[half:]), modes.CBC(iv)).encryptor()
        ciphertext = encryptor.update(padded) + encryptor.finalize()
        digest = {16: "sha256", 32: "sha512"}[half]
        mac_input = aad + iv + ciphertext + struct.pack(">Q", len(aad) * 8)
        tag = hmac.digest(cek[:half], mac_input, digest)[:half]
    body: dict[str, Any] = {"protected": protected_b64}
    if len(entries) == 1 and not general:
        body["encrypted_key"] = b64u(entries[0][1])
    else:
        body["recipients"] = [{"header": h, "encrypted_key": b64u(k)} for h, k in entries]
        body["encrypted_key"] = b64u(entries[0][1])  # go-jose's stray copy, to be ignored
    body.update(iv=b64u(iv), ciphertext=b64u(ciphertext), tag=b64u(tag))
    return json.dumps(body).encode()


@pytest.fixture(scope="module")
def other_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256"])
@pytest.mark.parametrize("enc", ["A256GCM", "A128GCM", "A128CBC-HS256", "A256CBC-HS512"])
def test_rsa_flattened(rsa_key: rsa.RSAPrivateKey, alg: str, enc: str) -> None:
    blob = make_jwe(PLAINTEXT, [(alg, rsa_key.public_key())], enc=enc)
    assert ocicrypt_jwe.decrypt(blob, [rsa_key]) == PLAINTEXT


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
@pytest.mark.parametrize("alg", ["ECDH-ES+A256KW", "ECDH-ES+A128KW", "ECDH-ES"])
def test_ecdh(curve: ec.EllipticCurve, alg: str) -> None:
    key = ec.generate_private_key(curve)
    blob = make_jwe(PLAINTEXT, [(alg, key.public_key())])
    assert ocicrypt_jwe.decrypt(blob, [key]) == PLAINTEXT


def test_general_form_with_several_recipients_opens_with_each_key(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, other_rsa: rsa.RSAPrivateKey
) -> None:
    blob = make_jwe(
        PLAINTEXT,
        [("RSA-OAEP", rsa_key.public_key()), ("ECDH-ES+A256KW", ec_key.public_key())],
    )
    assert json.loads(blob)["recipients"]
    assert ocicrypt_jwe.decrypt(blob, [rsa_key]) == PLAINTEXT
    assert ocicrypt_jwe.decrypt(blob, [ec_key]) == PLAINTEXT
    assert ocicrypt_jwe.decrypt(blob, [other_rsa, ec_key]) == PLAINTEXT


def test_compact_serialization(rsa_key: rsa.RSAPrivateKey) -> None:
    obj = json.loads(make_jwe(PLAINTEXT, [("RSA-OAEP", rsa_key.public_key())]))
    compact = ".".join(
        obj[k] for k in ("protected", "encrypted_key", "iv", "ciphertext", "tag")
    ).encode()
    assert ocicrypt_jwe.decrypt(compact, [rsa_key]) == PLAINTEXT


def test_deflated_content(rsa_key: rsa.RSAPrivateKey) -> None:
    deflater = zlib.compressobj(wbits=-15)
    packed = deflater.compress(PLAINTEXT) + deflater.flush()
    blob = make_jwe(packed, [("RSA-OAEP", rsa_key.public_key())], extra_protected={"zip": "DEF"})
    assert ocicrypt_jwe.decrypt(blob, [rsa_key]) == PLAINTEXT


def test_wrong_key_is_refused(
    rsa_key: rsa.RSAPrivateKey, other_rsa: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    blob = make_jwe(PLAINTEXT, [("RSA-OAEP", rsa_key.public_key())])
    with pytest.raises(DecryptError, match="no key opens the JWE"):
        ocicrypt_jwe.decrypt(blob, [other_rsa, ec_key])
    ec_blob = make_jwe(PLAINTEXT, [("ECDH-ES+A256KW", ec_key.public_key())])
    other_ec = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(DecryptError, match="no key opens the JWE"):
        ocicrypt_jwe.decrypt(ec_blob, [rsa_key, other_ec])


@pytest.mark.parametrize("field", ["ciphertext", "tag", "iv", "protected"])
def test_tampering_is_detected(rsa_key: rsa.RSAPrivateKey, field: str) -> None:
    obj = json.loads(make_jwe(PLAINTEXT, [("RSA-OAEP", rsa_key.public_key())]))
    raw = bytearray(base64.urlsafe_b64decode(obj[field] + "=" * (-len(obj[field]) % 4)))
    raw[-1] ^= 0x01
    obj[field] = b64u(bytes(raw))
    with pytest.raises(DecryptError):
        ocicrypt_jwe.decrypt(json.dumps(obj).encode(), [rsa_key])


@pytest.mark.parametrize("alg", ["dir", "A256KW", "PBES2-HS256+A128KW", "RSA1_5", None])
def test_unsupported_key_algorithms_are_refused(rsa_key: rsa.RSAPrivateKey, alg: Any) -> None:
    obj = json.loads(make_jwe(PLAINTEXT, [("RSA-OAEP", rsa_key.public_key())]))
    obj["protected"] = b64u(json.dumps({"alg": alg, "enc": "A256GCM"}).encode())
    with pytest.raises(DecryptError, match="unsupported JWE key algorithm"):
        ocicrypt_jwe.decrypt(json.dumps(obj).encode(), [rsa_key])


def test_critical_headers_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    blob = make_jwe(
        PLAINTEXT, [("RSA-OAEP", rsa_key.public_key())], extra_protected={"crit": ["exp"]}
    )
    with pytest.raises(DecryptError, match="critical"):
        ocicrypt_jwe.decrypt(blob, [rsa_key])


def test_duplicate_header_parameters_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    obj = json.loads(make_jwe(PLAINTEXT, [("RSA-OAEP", rsa_key.public_key())], general=True))
    obj["unprotected"] = {"enc": "A128GCM"}
    with pytest.raises(DecryptError, match="given twice"):
        ocicrypt_jwe.decrypt(json.dumps(obj).encode(), [rsa_key])


def test_epk_off_the_curve_is_refused(ec_key: ec.EllipticCurvePrivateKey) -> None:
    obj = json.loads(make_jwe(PLAINTEXT, [("ECDH-ES+A256KW", ec_key.public_key())]))
    header = json.loads(base64.urlsafe_b64decode(obj["protected"] + "=="))
    y = base64.urlsafe_b64decode(header["epk"]["y"] + "=" * (-len(header["epk"]["y"]) % 4))
    header["epk"]["y"] = b64u(bytes([y[0] ^ 1]) + y[1:])
    obj["protected"] = b64u(json.dumps(header).encode())
    with pytest.raises(DecryptError, match="not a point on its curve"):
        ocicrypt_jwe.decrypt(json.dumps(obj).encode(), [ec_key])


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\xff\xfe",
        b"{",
        b"[]",
        b'{"protected": 5}',
        b'{"protected": "!!"}',
        b'{"protected": "e30", "recipients": []}',
        b'{"protected": "e30", "recipients": [5]}',
        b'{"protected": "e30", "encrypted_key": "", "iv": "", "ciphertext": "", "tag": ""}',
        b"a.b.c",
        b"a.b.c.d.e",
    ],
)
def test_malformed_jwe_is_a_decrypt_error(rsa_key: rsa.RSAPrivateKey, blob: bytes) -> None:
    with pytest.raises(DecryptError):
        ocicrypt_jwe.decrypt(blob, [rsa_key])


def test_every_truncation_is_a_decrypt_error(rsa_key: rsa.RSAPrivateKey) -> None:
    blob = make_jwe(PLAINTEXT, [("RSA-OAEP", rsa_key.public_key())])
    for end in range(0, len(blob), 7):
        with pytest.raises(DecryptError):
            ocicrypt_jwe.decrypt(blob[:end], [rsa_key])


def test_private_jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> None:
    n = rsa_key.private_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64u(n.public_numbers.n.to_bytes(256, "big")),
        "e": b64u(n.public_numbers.e.to_bytes(3, "big")),
        "d": b64u(n.d.to_bytes(256, "big")),
    }
    from_jwk = ocicrypt_jwk.private_key_from_jwk(jwk)
    assert isinstance(from_jwk, rsa.RSAPrivateKey)
    assert from_jwk.private_numbers().d == n.d
    ec_jwk = {
        **epk_jwk(ec_key.public_key()),
        "d": b64u(ec_key.private_numbers().private_value.to_bytes(32, "big")),
    }
    ec_from_jwk = ocicrypt_jwk.private_key_from_jwk(ec_jwk)
    blob = make_jwe(PLAINTEXT, [("ECDH-ES+A256KW", ec_key.public_key())])
    assert ocicrypt_jwe.decrypt(blob, [ec_from_jwk]) == PLAINTEXT
    with pytest.raises(DecryptError, match="unsupported JWK key type"):
        ocicrypt_jwk.private_key_from_jwk({"kty": "oct", "k": "AAAA"})
    with pytest.raises(DecryptError):
        ocicrypt_jwk.private_key_from_jwk({**ec_jwk, "x": "AAAA"})
