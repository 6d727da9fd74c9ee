"""Layer encryption: what LayerEncrypter writes opens with ocicrypt's decryption, per recipient."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ocirt.errors import DecryptError, InvalidArgument
from ocirt.image.ocicrypt import layer as ocicrypt
from ocirt.image.ocicrypt.encrypt import (
    EncryptRecipients,
    LayerEncrypter,
    encrypted_media_type,
    load_encrypt_recipients,
)
from ocirt.image.ocicrypt.keys import DecryptKeys

BLOB = os.urandom(70_000)
JWE = "org.opencontainers.image.enc.keys.jwe"
PKCS7 = "org.opencontainers.image.enc.keys.pkcs7"
PUBOPTS = "org.opencontainers.image.enc.pubopts"


def encrypt(recipients: EncryptRecipients, blob: bytes = BLOB) -> tuple[bytes, dict[str, str]]:
    encrypter = LayerEncrypter(recipients)
    out = b"".join(encrypter.update(blob[i : i + 4096]) for i in range(0, len(blob), 4096))
    return out, encrypter.finalize()


def decrypt(ciphertext: bytes, annotations: dict[str, str], keys: DecryptKeys) -> bytes:
    cipher = ocicrypt.open_layer(annotations, keys)
    plain = cipher.update(ciphertext)
    cipher.finalize()
    assert cipher.plain_digest == "sha256:" + hashlib.sha256(plain).hexdigest()
    return plain


@pytest.fixture(scope="module")
def p7_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_jwe_rsa_single_recipient_is_flattened(rsa_key: rsa.RSAPrivateKey) -> None:
    ciphertext, annotations = encrypt(EncryptRecipients(jwe=(rsa_key.public_key(),)))
    assert ciphertext != BLOB
    jwe = json.loads(base64.b64decode(annotations[JWE]))
    assert "recipients" not in jwe
    header = json.loads(base64.urlsafe_b64decode(jwe["protected"] + "=="))
    assert header == {"enc": "A256GCM", "alg": "RSA-OAEP"}
    assert decrypt(ciphertext, annotations, DecryptKeys((rsa_key,))) == BLOB


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_jwe_ec(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    ciphertext, annotations = encrypt(EncryptRecipients(jwe=(key.public_key(),)))
    assert decrypt(ciphertext, annotations, DecryptKeys((key,))) == BLOB


def test_pkcs7_uses_go_parameters(
    p7_key: rsa.RSAPrivateKey, self_signed: Callable[..., x509.Certificate]
) -> None:
    cert = self_signed(p7_key, "enc")
    ciphertext, annotations = encrypt(EncryptRecipients(pkcs7=(cert,)))
    blob = base64.b64decode(annotations[PKCS7])
    assert bytes.fromhex("10133011840c") in blob
    assert decrypt(ciphertext, annotations, DecryptKeys((p7_key,), (cert,))) == BLOB


def test_every_recipient_opens_a_multi_recipient_layer(
    rsa_key: rsa.RSAPrivateKey,
    p7_key: rsa.RSAPrivateKey,
    self_signed: Callable[..., x509.Certificate],
) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(p7_key, "enc")
    recipients = EncryptRecipients(jwe=(rsa_key.public_key(), ec_key.public_key()), pkcs7=(cert,))
    ciphertext, annotations = encrypt(recipients)
    assert set(annotations) == {JWE, PKCS7, PUBOPTS}
    assert len(json.loads(base64.b64decode(annotations[JWE]))["recipients"]) == 2
    for keys in (DecryptKeys((rsa_key,)), DecryptKeys((ec_key,)), DecryptKeys((p7_key,), (cert,))):
        assert decrypt(ciphertext, annotations, keys) == BLOB
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(DecryptError, match="no key opens the layer"):
        ocicrypt.open_layer(annotations, DecryptKeys((stranger,)))


def test_each_layer_gets_its_own_key(rsa_key: rsa.RSAPrivateKey) -> None:
    recipients = EncryptRecipients(jwe=(rsa_key.public_key(),))
    first, _ = encrypt(recipients)
    second, _ = encrypt(recipients)
    assert first != second


def test_empty_blob(rsa_key: rsa.RSAPrivateKey) -> None:
    ciphertext, annotations = encrypt(EncryptRecipients(jwe=(rsa_key.public_key(),)), b"")
    assert ciphertext == b""
    assert decrypt(ciphertext, annotations, DecryptKeys((rsa_key,))) == b""


def test_encrypter_misuse(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(InvalidArgument, match="no encryption recipients"):
        LayerEncrypter(EncryptRecipients())
    encrypter = LayerEncrypter(EncryptRecipients(jwe=(rsa_key.public_key(),)))
    encrypter.finalize()
    with pytest.raises(InvalidArgument):
        encrypter.update(b"x")
    with pytest.raises(InvalidArgument):
        encrypter.finalize()


def test_media_type() -> None:
    plain = "application/vnd.oci.image.layer.v1.tar+gzip"
    assert encrypted_media_type(plain) == plain + "+encrypted"
    with pytest.raises(InvalidArgument):
        encrypted_media_type(plain + "+encrypted")


def test_load_recipients(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, self_signed: Callable[..., x509.Certificate]
) -> None:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(rsa_key, "enc")
    files = {
        "rsa.pem": rsa_key.public_key().public_bytes(serialization.Encoding.PEM, spki),
        "ec.der": ec_key.public_key().public_bytes(serialization.Encoding.DER, spki),
        "c.pem": cert.public_bytes(serialization.Encoding.PEM),
        "c.der": cert.public_bytes(serialization.Encoding.DER),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    loaded = load_encrypt_recipients(
        [f"jwe:{tmp_path / n}" for n in ("rsa.pem", "ec.der", "c.der")]
        + [f"pkcs7:{tmp_path / n}" for n in ("c.pem", "c.der")]
    )
    assert len(loaded.jwe) == 3
    assert isinstance(loaded.jwe[1], ec.EllipticCurvePublicKey)
    assert [c.serial_number for c in loaded.pkcs7] == [cert.serial_number] * 2


def test_bad_recipients(tmp_path: Path) -> None:
    ed = tmp_path / "ed.pem"
    ed.write_bytes(
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    junk = tmp_path / "junk"
    junk.write_bytes(b"junk")
    cases = {
        "pgp:me@example.com": "invalid encryption recipient",
        "jwe:": "invalid encryption recipient",
        str(junk): "invalid encryption recipient",
        f"jwe:{tmp_path / 'absent'}": "cannot read recipient file",
        f"jwe:{junk}": "not a public key",
        f"pkcs7:{junk}": "not an x509 certificate",
        f"jwe:{ed}": "only RSA and EC keys",
    }
    for spec, message in cases.items():
        with pytest.raises(InvalidArgument, match=message):
            load_encrypt_recipients([spec])


def test_pkcs7_refuses_a_non_rsa_certificate(self_signed: Callable[..., x509.Certificate]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = self_signed(key, "ec", serial=1)
    encrypter = LayerEncrypter(EncryptRecipients(pkcs7=(cert,)))
    with pytest.raises(InvalidArgument, match="RSA keys"):
        encrypter.finalize()
