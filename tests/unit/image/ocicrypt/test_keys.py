"""Key arguments and key files: Kanto's `file[:password]`, ocicrypt's forms, every format."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt.keys import (
    KeyArgument,
    PasswordSource,
    is_gpg_keyring,
    load_decrypt_keys,
    parse_key_argument,
    parse_recipient,
)

Enc = serialization.Encoding
Fmt = serialization.PrivateFormat


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def _numbers(key: object) -> object:
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key.private_numbers()


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("/k.pem", KeyArgument("/k.pem")),
        ("/k.pem:secret", KeyArgument("/k.pem", PasswordSource("pass", "secret"))),
        ("/k.pem:a:b", KeyArgument("/k.pem", PasswordSource("pass", "a:b"))),
        ("/k.pem:pass=x=y", KeyArgument("/k.pem", PasswordSource("pass", "x=y"))),
        ("/k.pem:file=/pw", KeyArgument("/k.pem", PasswordSource("file", "/pw"))),
        ("/k.pem:fd=3", KeyArgument("/k.pem", PasswordSource("fd", "3"))),
        ("/k.pem:", KeyArgument("/k.pem", PasswordSource("pass", ""))),
    ],
)
def test_parse_key_argument(arg: str, expected: KeyArgument) -> None:
    assert parse_key_argument(arg) == expected


def test_password_is_not_in_repr() -> None:
    assert "hunter2" not in repr(parse_key_argument("/k:hunter2"))


@pytest.mark.parametrize("arg", ["", ":secret"])
def test_key_argument_without_file_is_refused(arg: str) -> None:
    with pytest.raises(DecryptError, match="no key file"):
        parse_key_argument(arg)


def test_parse_recipient() -> None:
    assert parse_recipient("pkcs7:/c.pem") == "/c.pem"
    for bad in ("/c.pem", "jwe:/c.pem", "pkcs7:", "pgp:me@example.com"):
        with pytest.raises(DecryptError, match="pkcs7:<x509 certificate file>"):
            parse_recipient(bad)


@pytest.mark.parametrize(
    ("encoding", "fmt"),
    [
        (Enc.PEM, Fmt.PKCS8),
        (Enc.PEM, Fmt.TraditionalOpenSSL),
        (Enc.DER, Fmt.PKCS8),
        (Enc.DER, Fmt.TraditionalOpenSSL),
    ],
)
@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_unprotected_key_formats(
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
    encoding: serialization.Encoding,
    fmt: serialization.PrivateFormat,
    which: str,
) -> None:
    key = rsa_key if which == "rsa" else ec_key
    path = tmp_path / "key"
    path.write_bytes(key.private_bytes(encoding, fmt, serialization.NoEncryption()))
    loaded = load_decrypt_keys([str(path)], [])
    assert [_numbers(k) for k in loaded.private_keys] == [key.private_numbers()]
    # A password given for an unprotected key is ignored, as ocicrypt does.
    assert len(load_decrypt_keys([f"{path}:unused"], []).private_keys) == 1


@pytest.mark.parametrize(
    ("encoding", "fmt"),
    [(Enc.PEM, Fmt.TraditionalOpenSSL), (Enc.PEM, Fmt.PKCS8), (Enc.DER, Fmt.PKCS8)],
)
def test_protected_keys(
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    encoding: serialization.Encoding,
    fmt: serialization.PrivateFormat,
) -> None:
    path = tmp_path / "key"
    path.write_bytes(
        rsa_key.private_bytes(encoding, fmt, serialization.BestAvailableEncryption(b"pw:1"))
    )
    for arg in (f"{path}:pw:1", f"{path}:pass=pw:1"):
        (key,) = load_decrypt_keys([arg], []).private_keys
        assert _numbers(key) == rsa_key.private_numbers()
    with pytest.raises(DecryptError, match="wrong password"):
        load_decrypt_keys([f"{path}:pw:2"], [])
    with pytest.raises(DecryptError, match="no password was given"):
        load_decrypt_keys([str(path)], [])


def test_password_file_with_and_without_newline(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(
        rsa_key.private_bytes(
            Enc.PEM, Fmt.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"pw")
        )
    )
    for content in (b"pw", b"pw\n"):
        pwfile = tmp_path / "pw"
        pwfile.write_bytes(content)
        assert len(load_decrypt_keys([f"{path}:file={pwfile}"], []).private_keys) == 1
    with pytest.raises(DecryptError, match="cannot read password file"):
        load_decrypt_keys([f"{path}:file={tmp_path / 'absent'}"], [])


def test_password_descriptor(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(
        rsa_key.private_bytes(
            Enc.PEM, Fmt.TraditionalOpenSSL, serialization.BestAvailableEncryption(b"pw")
        )
    )
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(DecryptError, match="no password to read"):
            load_decrypt_keys([f"{path}:fd={read_end}"], [])
        os.write(write_end, b"pw")
        assert len(load_decrypt_keys([f"{path}:fd={read_end}"], []).private_keys) == 1
    finally:
        os.close(read_end)
        os.close(write_end)
    left, right = socket.socketpair()
    with left, right, pytest.raises(DecryptError, match="not a pipe or a file"):
        load_decrypt_keys([f"{path}:fd={left.fileno()}"], [])
    for bad in ("x", "99999"):
        with pytest.raises(DecryptError, match="not a readable file descriptor"):
            load_decrypt_keys([f"{path}:fd={bad}"], [])


def test_certificates_from_keys_and_recipients(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, self_signed: Callable[..., x509.Certificate]
) -> None:
    cert = self_signed(rsa_key, "k", serial=7)
    pem, der = tmp_path / "c.pem", tmp_path / "c.der"
    pem.write_bytes(cert.public_bytes(Enc.PEM))
    der.write_bytes(cert.public_bytes(Enc.DER))
    keys = load_decrypt_keys([str(pem)], [f"pkcs7:{der}"])
    assert [c.serial_number for c in keys.certificates] == [7, 7]
    assert keys.private_keys == ()
    assert keys.empty
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(rsa_key.private_bytes(Enc.PEM, Fmt.PKCS8, serialization.NoEncryption()))
    with pytest.raises(DecryptError, match="holds no x509 certificate"):
        load_decrypt_keys([], [f"pkcs7:{key_file}"])
    with pytest.raises(DecryptError, match="cannot read recipient file"):
        load_decrypt_keys([], [f"pkcs7:{tmp_path / 'absent'}"])


def test_key_and_certificate_in_one_pem(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, self_signed: Callable[..., x509.Certificate]
) -> None:
    path = tmp_path / "both.pem"
    path.write_bytes(
        self_signed(rsa_key, "k", serial=7).public_bytes(Enc.PEM)
        + rsa_key.private_bytes(Enc.PEM, Fmt.PKCS8, serialization.NoEncryption())
    )
    keys = load_decrypt_keys([str(path)], [])
    assert len(keys.private_keys) == 1
    assert len(keys.certificates) == 1
    assert not keys.empty


def test_unrecognised_files_are_skipped(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    public = tmp_path / "pub.pem"
    public.write_bytes(
        rsa_key.public_key().public_bytes(Enc.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a key")
    public_jwk = tmp_path / "pub.jwk"
    public_jwk.write_text(json.dumps({"kty": "RSA", "n": "AQAB", "e": "AQAB"}))
    keys = load_decrypt_keys([str(public), str(junk), str(public_jwk)], [])
    assert keys.empty


def test_unreadable_and_unsupported_keys(tmp_path: Path) -> None:
    with pytest.raises(DecryptError, match="cannot read key file"):
        load_decrypt_keys([str(tmp_path / "absent")], [])
    ed = tmp_path / "ed.pem"
    ed.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            Enc.PEM, Fmt.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(DecryptError, match="only RSA and EC keys"):
        load_decrypt_keys([str(ed)], [])
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(DecryptError, match="unreadable private key"):
        load_decrypt_keys([str(broken)], [])


def test_private_jwk_file(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey) -> None:
    numbers = ec_key.private_numbers()

    def b64u(value: int) -> str:
        return base64.urlsafe_b64encode(value.to_bytes(48, "big")).rstrip(b"=").decode()

    jwk = {
        "kty": "EC",
        "crv": "P-384",
        "x": b64u(numbers.public_numbers.x),
        "y": b64u(numbers.public_numbers.y),
        "d": b64u(numbers.private_value),
    }
    path = tmp_path / "k.jwk"
    path.write_text(json.dumps(jwk))
    (key,) = load_decrypt_keys([str(path)], []).private_keys
    assert _numbers(key) == numbers
    path.write_text(json.dumps({**jwk, "crv": "P-999"}))
    with pytest.raises(DecryptError, match="unsupported EC curve"):
        load_decrypt_keys([str(path)], [])


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (bytes([0x95, 0x03, 0x98]), True),  # old format, tag 5, two-byte length
        (bytes([0xC5, 0x10]), True),  # new format, tag 5
        (bytes([0x99, 0x01, 0x0D]), False),  # old format, tag 6: a public key
        (bytes([0xC6, 0x10]), False),
        (b"\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n", True),
        (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n", False),
        (b"\x30\x82", False),
        (b"", False),
    ],
)
def test_gpg_keyring_detection(data: bytes, expected: bool) -> None:
    assert is_gpg_keyring(data) is expected


def test_gpg_keyring_is_kept_with_its_passphrase(tmp_path: Path) -> None:
    ring = tmp_path / "ring.gpg"
    ring.write_bytes(bytes([0x95, 0x03, 0x98]) + b"\x00" * 16)
    (keyring,) = load_decrypt_keys([f"{ring}:pp"], []).gpg_keyrings
    assert keyring.passphrase == b"pp"
    assert keyring.source == str(ring)
    assert b"pp" not in repr(keyring).encode()


def test_oversized_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"\0" * ((1 << 20) + 1))
    with pytest.raises(DecryptError, match="larger than"):
        load_decrypt_keys([str(path)], [])
