"""Decryption keys for encrypted layers: the key-argument grammar and key-file parsing.

Owns `DecryptKeys` and `load_decrypt_keys`. A key argument is Kanto's `file[:password]`
(ContainerFactory API, "decryption") or one of ocicrypt's password forms `file:pass=pw`,
`file:file=pwfile`, `file:fd=N` (docs/oci-image-notes.md §3 "Key files"); a recipient is
`pkcs7:<x509 file>`. A key file may hold a PEM or DER private key (RSA or EC; PKCS#8,
PKCS#1 or SEC1, optionally password-protected), an x509 certificate, a private JWK, or a
GPG secret key ring. Does I/O: it reads the named files (and, for `fd=`, a descriptor of
this process). Every failure is a DecryptError.
"""

from __future__ import annotations

import json
import os
import re
import select
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ec import (
    EllipticCurvePrivateKey,
)
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key
from cryptography.x509 import Certificate

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt.jwk import PrivateKey, private_key_from_jwk

# ocicrypt reads at most 64 bytes from a password descriptor (helpers/parse_helpers.go).
_FD_PASSWORD_MAX = 64
# Key files are small; a bound keeps a mistaken path (a disk image, /dev/zero) harmless.
_KEY_FILE_MAX = 1 << 20

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


@dataclass(frozen=True, slots=True)
class GpgKeyring:
    """A GPG secret key ring (binary or armored) and the passphrase of its keys, if any."""

    source: str
    data: bytes = field(repr=False)
    passphrase: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class DecryptKeys:
    """Everything that may unwrap a layer key: private keys, PKCS7 certificates, GPG rings."""

    private_keys: tuple[PrivateKey, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    gpg_keyrings: tuple[GpgKeyring, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.private_keys or self.gpg_keyrings)


@dataclass(frozen=True, slots=True)
class KeyArgument:
    """One parsed key argument: the key file and how its password is given."""

    path: str
    password: PasswordSource | None = None


@dataclass(frozen=True, slots=True)
class PasswordSource:
    """`kind` is "pass" (literal, also Kanto's bare form), "file" or "fd"; `value` its text."""

    kind: str
    value: str = field(repr=False)


def parse_key_argument(arg: str) -> KeyArgument:
    """Split `file[:password]`. Pure.

    The split is at the first `:`, so a password may contain `:` (ocicrypt refuses it);
    a key path therefore may not.
    """
    path, sep, rest = arg.partition(":")
    if not path:
        raise DecryptError(f"invalid decryption key argument {arg!r}: no key file")
    if not sep:
        return KeyArgument(path)
    for kind in ("pass", "file", "fd"):
        if rest.startswith(kind + "="):
            return KeyArgument(path, PasswordSource(kind, rest[len(kind) + 1 :]))
    return KeyArgument(path, PasswordSource("pass", rest))


def parse_recipient(arg: str) -> str:
    """The certificate path of a `pkcs7:<x509 file>` recipient. Pure."""
    scheme, sep, path = arg.partition(":")
    if not sep or scheme != "pkcs7" or not path:
        raise DecryptError(
            f"invalid decryption recipient {arg!r}: the only form is pkcs7:<x509 certificate file>"
        )
    return path


def load_decrypt_keys(keys: Sequence[str], recipients: Sequence[str]) -> DecryptKeys:
    """Read every key and recipient file named by Kanto's `decryption` config.

    As in ocicrypt, a key file that holds nothing usable is skipped, so a certificate may be
    listed among the keys; a wrong or missing password for a protected key is an error.
    """
    private_keys: list[PrivateKey] = []
    certificates: list[Certificate] = []
    keyrings: list[GpgKeyring] = []
    for arg in keys:
        parsed = parse_key_argument(arg)
        passwords = _password_candidates(parsed.password)
        data = _read_file(parsed.path, "key")
        if is_gpg_keyring(data):
            keyrings.append(GpgKeyring(parsed.path, data, passwords[0] if passwords else None))
            continue
        found_keys, found_certs = parse_key_file(data, passwords, parsed.path)
        private_keys.extend(found_keys)
        certificates.extend(found_certs)
    for arg in recipients:
        path = parse_recipient(arg)
        data = _read_file(path, "recipient")
        certs = _parse_certificates(data)
        if not certs:
            raise DecryptError(f"recipient file {path} holds no x509 certificate")
        certificates.extend(certs)
    return DecryptKeys(tuple(private_keys), tuple(certificates), tuple(keyrings))


def is_gpg_keyring(data: bytes) -> bool:
    """True if `data` starts with an OpenPGP secret-key packet (RFC 4880 §4.2, §5.5.1.3)."""
    if data.lstrip().startswith(b"-----BEGIN PGP PRIVATE KEY BLOCK-----"):
        return True
    if not data or not data[0] & 0x80:
        return False
    first = data[0]
    tag = first & 0x3F if first & 0x40 else (first >> 2) & 0x0F
    return tag == 5


def parse_key_file(
    data: bytes, passwords: Sequence[bytes], source: str
) -> tuple[list[PrivateKey], list[Certificate]]:
    """The private keys and certificates in one key file's bytes. Pure."""
    if _PEM_BLOCK.search(data):
        keys: list[PrivateKey] = []
        certs: list[Certificate] = []
        for match in _PEM_BLOCK.finditer(data):
            label = match.group(1)
            if label == b"CERTIFICATE":
                certs.extend(_parse_certificates(match.group(0)))
            elif label.endswith(b"PRIVATE KEY"):
                keys.append(_load_pem_key(match.group(0), passwords, source))
        return keys, certs
    if data.lstrip().startswith(b"{"):
        return _load_jwk(data, source), []
    der_key = _load_der_key(data, passwords, source)
    if der_key is not None:
        return [der_key], []
    return [], _parse_certificates(data)


def _password_candidates(source: PasswordSource | None) -> list[bytes]:
    if source is None:
        return []
    if source.kind == "pass":
        return [source.value.encode()]
    if source.kind == "file":
        raw = _read_file(source.value, "password")
        # ocicrypt uses the file verbatim; `echo pw > file` adds a newline people do not mean.
        stripped = raw.rstrip(b"\r\n")
        return [raw, stripped] if stripped != raw else [raw]
    return [_read_password_fd(source.value)]


def _read_password_fd(text: str) -> bytes:
    try:
        fd = int(text)
        mode = os.fstat(fd).st_mode
    except (ValueError, OSError) as exc:
        raise DecryptError(f"{text!r} is not a readable file descriptor") from exc
    # Only pipes and files: reading a socket or terminal of the daemon would steal its input.
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        raise DecryptError(f"file descriptor {fd} is not a pipe or a file")
    try:
        if stat.S_ISFIFO(mode) and not select.select([fd], [], [], 0)[0]:
            raise DecryptError(f"file descriptor {fd} has no password to read")
        return os.read(fd, _FD_PASSWORD_MAX)
    except OSError as exc:
        raise DecryptError(f"cannot read the password from descriptor {fd}: {exc}") from exc


def _read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_KEY_FILE_MAX + 1)
    except OSError as exc:
        raise DecryptError(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if len(data) > _KEY_FILE_MAX:
        raise DecryptError(f"{what} file {path} is larger than {_KEY_FILE_MAX} bytes")
    return data


def _load_pem_key(block: bytes, passwords: Sequence[bytes], source: str) -> PrivateKey:
    encrypted = b"ENCRYPTED" in block.split(b"\n", 2)[0] or b"Proc-Type: 4,ENCRYPTED" in block
    if not encrypted:
        try:
            return _checked(load_pem_private_key(block, None), source)
        except (ValueError, TypeError) as exc:
            raise DecryptError(f"key file {source} holds an unreadable private key") from exc
    if not passwords:
        raise DecryptError(f"key file {source} is encrypted and no password was given")
    for password in passwords:
        try:
            return _checked(load_pem_private_key(block, password), source)
        except (ValueError, TypeError):
            continue
    raise DecryptError(f"wrong password for key file {source}")


def _load_der_key(data: bytes, passwords: Sequence[bytes], source: str) -> PrivateKey | None:
    try:
        return _checked(load_der_private_key(data, None), source)
    except TypeError:
        pass  # an encrypted PKCS#8 DER key: needs a password
    except ValueError:
        return None
    if not passwords:
        raise DecryptError(f"key file {source} is encrypted and no password was given")
    for password in passwords:
        try:
            return _checked(load_der_private_key(data, password), source)
        except (ValueError, TypeError):
            continue
    raise DecryptError(f"wrong password for key file {source}")


def _checked(key: object, source: str) -> PrivateKey:
    if isinstance(key, RSAPrivateKey | EllipticCurvePrivateKey):
        return key
    raise DecryptError(
        f"key file {source} holds a {type(key).__name__}; only RSA and EC keys decrypt layers"
    )


def _load_jwk(data: bytes, source: str) -> list[PrivateKey]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(obj, dict) or "d" not in obj:
        return []  # a public JWK or other JSON: nothing to decrypt with, skipped as ocicrypt does
    try:
        return [private_key_from_jwk(obj)]
    except DecryptError as exc:
        raise DecryptError(f"key file {source}: {exc.message}") from exc


def _parse_certificates(data: bytes) -> list[Certificate]:
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return list(x509.load_pem_x509_certificates(data))
        except ValueError:
            return []
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        return []
