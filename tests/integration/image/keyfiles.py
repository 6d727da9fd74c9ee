"""Key and certificate files for the encryption interop tests (made with cryptography)."""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def write_private(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def write_public(path: Path, key: PrivateKey) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def write_self_signed(path: Path, key: rsa.RSAPrivateKey, common_name: str) -> Path:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def write_key_set(directory: Path, common_name: str) -> dict[str, Path]:
    """The recipients and keys the interop tests share: JWE RSA and EC pairs, a PKCS7 key
    with its self-signed certificate, and an RSA key that is no recipient ("other")."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    p7_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "rsa": write_private(directory / "rsa.pem", rsa_key),
        "rsa_pub": write_public(directory / "rsa_pub.pem", rsa_key),
        "ec": write_private(directory / "ec.pem", ec_key),
        "ec_pub": write_public(directory / "ec_pub.pem", ec_key),
        "p7": write_private(directory / "p7.pem", p7_key),
        "p7_cert": write_self_signed(directory / "p7.crt", p7_key, common_name),
        "other": write_private(directory / "other.pem", other),
    }
