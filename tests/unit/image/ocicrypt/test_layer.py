"""Layer decryption: options JSON, annotations, protocol choice and the streaming cipher.

Layers are encrypted here with cryptography directly (AES-256-CTR + HMAC-SHA256 over the
ciphertext, options wrapped in an RSA-OAEP JWE), as ocicrypt does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt import layer as ocicrypt
from ocirt.image.ocicrypt.keys import DecryptKeys, GpgKeyring

JWE = "org.opencontainers.image.enc.keys.jwe"
PKCS7 = "org.opencontainers.image.enc.keys.pkcs7"
PGP = "org.opencontainers.image.enc.keys.pgp"
PUBOPTS = "org.opencontainers.image.enc.pubopts"
BLOB = os.urandom(100_000) + b"tail"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwe_for(public: rsa.RSAPublicKey, plaintext: bytes) -> bytes:
    """A flattened RSA-OAEP/A256GCM JWE, the shape go-jose writes for one recipient."""
    cek, iv = os.urandom(32), os.urandom(12)
    wrapped = public.encrypt(cek, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    protected = b64u(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM"}).encode())
    sealed = AESGCM(cek).encrypt(iv, plaintext, protected.encode())
    return json.dumps(
        {
            "protected": protected,
            "encrypted_key": b64u(wrapped),
            "iv": b64u(iv),
            "ciphertext": b64u(sealed[:-16]),
            "tag": b64u(sealed[-16:]),
        }
    ).encode()


def encrypt_layer(
    blob: bytes,
    public: rsa.RSAPublicKey,
    private_options: dict[str, Any] | None = None,
    public_options: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Encrypt as ocicrypt's AES_256_CTR_HMAC_SHA256 block cipher and wrap the options."""
    symkey, nonce = os.urandom(32), os.urandom(16)
    encryptor = Cipher(algorithms.AES(symkey), modes.CTR(nonce)).encryptor()
    ciphertext = encryptor.update(blob) + encryptor.finalize()
    mac = hmac.digest(symkey, ciphertext, "sha256")
    priv = {
        "symkey": b64(symkey),
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "cipheroptions": {"nonce": b64(nonce)},
        **(private_options or {}),
    }
    pub = {
        "cipher": "AES_256_CTR_HMAC_SHA256",
        "hmac": b64(mac),
        "cipheroptions": {},
        **(public_options or {}),
    }
    annotations = {
        JWE: b64(jwe_for(public, json.dumps(priv).encode())),
        PUBOPTS: b64(json.dumps(pub).encode()),
        "org.example.keep": "yes",
    }
    return ciphertext, annotations


def decrypt_all(annotations: dict[str, str], keys: DecryptKeys, data: bytes, step: int) -> bytes:
    cipher = ocicrypt.open_layer(annotations, keys)
    out = b"".join(cipher.update(data[i : i + step]) for i in range(0, len(data), step))
    cipher.finalize()
    return out


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def layer(key: rsa.RSAPrivateKey) -> tuple[bytes, dict[str, str]]:
    return encrypt_layer(BLOB, key.public_key())


def test_media_types() -> None:
    for base in ("tar", "tar+gzip", "tar+zstd"):
        encrypted = f"application/vnd.oci.image.layer.v1.{base}+encrypted"
        assert ocicrypt.is_encrypted(encrypted)
        assert (
            ocicrypt.decrypted_media_type(encrypted) == f"application/vnd.oci.image.layer.v1.{base}"
        )
    plain = "application/vnd.oci.image.layer.v1.tar+gzip"
    assert not ocicrypt.is_encrypted(plain)
    assert ocicrypt.decrypted_media_type(plain) == plain


def test_plain_annotations_drop_every_enc_annotation(
    layer: tuple[bytes, dict[str, str]],
) -> None:
    annotations = {**layer[1], "org.opencontainers.image.enc.keys.provider.x": "y"}
    assert ocicrypt.plain_annotations(annotations) == {"org.example.keep": "yes"}


@pytest.mark.parametrize("step", [1 << 20, 65536, 4097, 16])
def test_round_trip_in_any_chunking(
    key: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]], step: int
) -> None:
    ciphertext, annotations = layer
    assert decrypt_all(annotations, DecryptKeys((key,)), ciphertext, step) == BLOB


def test_round_trip_byte_by_byte(key: rsa.RSAPrivateKey) -> None:
    ciphertext, annotations = encrypt_layer(BLOB[:5000], key.public_key())
    assert decrypt_all(annotations, DecryptKeys((key,)), ciphertext, 1) == BLOB[:5000]


def test_cipher_matches_aes_ctr_with_the_nonce_as_counter(key: rsa.RSAPrivateKey) -> None:
    # Counter overflow across the low 64 bits must carry, as Go's cipher.NewCTR does.
    symkey, nonce = os.urandom(32), b"\x00" * 8 + b"\xff" * 8
    expected = Cipher(algorithms.AES(symkey), modes.ECB()).encryptor()
    block0 = expected.update(nonce)
    block1 = expected.update((int.from_bytes(nonce, "big") + 1).to_bytes(16, "big"))
    plain = bytes(32)
    ciphertext = bytes(a ^ b for a, b in zip(plain, block0 + block1, strict=True))
    cipher = ocicrypt.LayerCipher(symkey, nonce, hmac.digest(symkey, ciphertext, "sha256"), "")
    assert cipher.update(ciphertext) == plain
    cipher.finalize()


def test_hmac_mismatch_is_reported_at_finalize(
    key: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]]
) -> None:
    ciphertext, annotations = layer
    tampered = bytearray(ciphertext)
    tampered[-1] ^= 0x80
    cipher = ocicrypt.open_layer(annotations, DecryptKeys((key,)))
    plain = cipher.update(bytes(tampered))
    assert plain[:-1] == BLOB[:-1]  # CTR hands bytes out at once; only finalize judges them
    with pytest.raises(DecryptError, match="HMAC mismatch"):
        cipher.finalize()


def test_truncated_ciphertext_fails_at_finalize(
    key: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]]
) -> None:
    ciphertext, annotations = layer
    cipher = ocicrypt.open_layer(annotations, DecryptKeys((key,)))
    cipher.update(ciphertext[:-1])
    with pytest.raises(DecryptError, match="HMAC mismatch"):
        cipher.finalize()


def test_digest_from_private_options_is_checked(key: rsa.RSAPrivateKey) -> None:
    wrong = "sha256:" + "0" * 64
    ciphertext, annotations = encrypt_layer(BLOB, key.public_key(), {"digest": wrong})
    cipher = ocicrypt.open_layer(annotations, DecryptKeys((key,)))
    assert cipher.plain_digest == wrong
    cipher.update(ciphertext)
    with pytest.raises(DecryptError, match="does not match its digest"):
        cipher.finalize()


def test_digest_may_be_absent(key: rsa.RSAPrivateKey) -> None:
    ciphertext, annotations = encrypt_layer(BLOB, key.public_key(), {"digest": None})
    assert decrypt_all(annotations, DecryptKeys((key,)), ciphertext, 8192) == BLOB


def test_cipher_cannot_be_reused(
    key: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]]
) -> None:
    ciphertext, annotations = layer
    cipher = ocicrypt.open_layer(annotations, DecryptKeys((key,)))
    cipher.update(ciphertext)
    cipher.finalize()
    with pytest.raises(DecryptError):
        cipher.update(b"x")
    with pytest.raises(DecryptError):
        cipher.finalize()


def test_json_keys_match_case_insensitively_like_go(key: rsa.RSAPrivateKey) -> None:
    symkey, nonce = os.urandom(32), os.urandom(16)
    encryptor = Cipher(algorithms.AES(symkey), modes.CTR(nonce)).encryptor()
    ciphertext = encryptor.update(BLOB) + encryptor.finalize()
    priv = {"SymKey": b64(symkey), "Digest": "", "CipherOptions": {"nonce": b64(nonce)}}
    pub = {
        "Cipher": "AES_256_CTR_HMAC_SHA256",
        "HMAC": b64(hmac.digest(symkey, ciphertext, "sha256")),
    }
    annotations = {
        JWE: b64(jwe_for(key.public_key(), json.dumps(priv).encode())),
        PUBOPTS: b64(json.dumps(pub).encode()),
    }
    assert decrypt_all(annotations, DecryptKeys((key,)), ciphertext, 65536) == BLOB


def test_nonce_in_public_options_wins(key: rsa.RSAPrivateKey) -> None:
    _, annotations = encrypt_layer(BLOB, key.public_key())
    options = ocicrypt.unwrap_private_options(annotations, DecryptKeys((key,)))
    assert set(options.cipher_options) == {"nonce"}
    _, moved = encrypt_layer(
        BLOB, key.public_key(), {"cipheroptions": {}}, {"cipheroptions": {"nonce": b64(bytes(16))}}
    )
    assert ocicrypt.parse_public_options(moved).cipher_options == {"nonce": bytes(16)}
    ocicrypt.open_layer(moved, DecryptKeys((key,)))


def test_comma_separated_blobs_are_each_tried(
    key: rsa.RSAPrivateKey, other: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]]
) -> None:
    ciphertext, annotations = layer
    options = ocicrypt.unwrap_private_options(annotations, DecryptKeys((key,)))
    priv = json.dumps(
        {
            "symkey": b64(options.symkey),
            "digest": options.digest,
            "cipheroptions": {"nonce": b64(options.cipher_options["nonce"])},
        }
    ).encode()
    joined = {**annotations, JWE: annotations[JWE] + "," + b64(jwe_for(other.public_key(), priv))}
    assert decrypt_all(joined, DecryptKeys((other,)), ciphertext, 65536) == BLOB
    assert decrypt_all(joined, DecryptKeys((key,)), ciphertext, 65536) == BLOB


def test_wrong_key_names_the_protocols_tried(
    other: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]]
) -> None:
    _, annotations = layer
    with pytest.raises(DecryptError, match=r"no key opens the layer \(tried jwe\)"):
        ocicrypt.open_layer(annotations, DecryptKeys((other,)))


def test_missing_key_kind(layer: tuple[bytes, dict[str, str]]) -> None:
    _, annotations = layer
    only_gpg = DecryptKeys(gpg_keyrings=(GpgKeyring("ring", b"\x95"),))
    with pytest.raises(DecryptError, match=r"missing private key needed.*wrapped for jwe"):
        ocicrypt.open_layer(annotations, only_gpg)
    with pytest.raises(DecryptError, match="missing private key"):
        ocicrypt.open_layer(annotations, DecryptKeys())


def test_ec_keys_are_not_offered_to_pkcs7() -> None:
    ec_only = DecryptKeys((ec.generate_private_key(ec.SECP256R1()),))
    with pytest.raises(DecryptError, match="wrapped for pkcs7"):
        ocicrypt.unwrap_private_options({PKCS7: b64(b"x")}, ec_only)


def test_unsupported_wrappers_only(key: rsa.RSAPrivateKey) -> None:
    annotations = {"org.opencontainers.image.enc.keys.pkcs11": b64(b"x"), PUBOPTS: b64(b"{}")}
    with pytest.raises(DecryptError, match="wrapped only for pkcs11"):
        ocicrypt.unwrap_private_options(annotations, DecryptKeys((key,)))
    with pytest.raises(DecryptError, match="no wrapped keys"):
        ocicrypt.unwrap_private_options({}, DecryptKeys((key,)))


@pytest.mark.parametrize(
    ("pubopts", "message"),
    [
        (None, "no cipher type provided"),
        (b64(b"{}"), "no cipher type provided"),
        (b64(b'{"cipher": "AES_128_GCM"}'), "unsupported layer cipher"),
        (b64(b'{"cipher": "AES_256_CTR_HMAC_SHA256"}'), "HMAC is missing"),
        (b64(b'{"cipher": "AES_256_CTR_HMAC_SHA256", "hmac": "AAAA"}'), "not 32 bytes"),
        (b64(b'{"cipher": "AES_256_CTR_HMAC_SHA256", "hmac": 5}'), "not a base64 string"),
        ("%%%", "pubopts annotation is not valid base64"),
        (b64(b"[1]"), "not a JSON object"),
        (b64(b"\xff{"), "not valid JSON"),
    ],
)
def test_malformed_public_options(
    key: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]], pubopts: str | None, message: str
) -> None:
    annotations = {k: v for k, v in layer[1].items() if k != PUBOPTS}
    if pubopts is not None:
        annotations[PUBOPTS] = pubopts
    with pytest.raises(DecryptError, match=message):
        ocicrypt.open_layer(annotations, DecryptKeys((key,)))


@pytest.mark.parametrize(
    ("private", "message"),
    [
        ({"symkey": b64(b"short")}, "not 32 bytes"),
        ({"symkey": "not base64!"}, "not valid base64"),
        ({"digest": "md5:abc"}, "malformed digest"),
        ({"digest": 5}, "malformed digest"),
        ({"cipheroptions": []}, "cipheroptions is not a JSON object"),
        ({"cipheroptions": {"nonce": b64(b"short")}}, "nonce is missing or not 16 bytes"),
        ({"cipheroptions": {}}, "nonce is missing"),
    ],
)
def test_malformed_private_options(
    key: rsa.RSAPrivateKey, private: dict[str, Any], message: str
) -> None:
    _, annotations = encrypt_layer(BLOB, key.public_key(), private)
    with pytest.raises(DecryptError, match=message):
        ocicrypt.open_layer(annotations, DecryptKeys((key,)))


@pytest.mark.parametrize("plaintext", [b"", b"[]", b"null", b"\xff", b"{"])
def test_private_options_that_are_not_an_object(key: rsa.RSAPrivateKey, plaintext: bytes) -> None:
    annotations = {JWE: b64(jwe_for(key.public_key(), plaintext)), PUBOPTS: b64(b"{}")}
    with pytest.raises(DecryptError, match="private options"):
        ocicrypt.unwrap_private_options(annotations, DecryptKeys((key,)))


@pytest.mark.parametrize("value", ["", ",", "!!!", b64(b"not a jwe"), "," + b64(b"{}")])
def test_malformed_keys_annotation(key: rsa.RSAPrivateKey, value: str) -> None:
    annotations = {JWE: value, PUBOPTS: b64(b'{"cipher":"AES_256_CTR_HMAC_SHA256"}')}
    with pytest.raises(DecryptError):
        ocicrypt.open_layer(annotations, DecryptKeys((key,)))


def test_check_authorised(
    key: rsa.RSAPrivateKey, other: rsa.RSAPrivateKey, layer: tuple[bytes, dict[str, str]]
) -> None:
    _, annotations = layer
    _, second = encrypt_layer(b"second", other.public_key())
    plain: dict[str, str] = {"org.example.keep": "yes"}
    ocicrypt.check_authorised([plain, annotations], DecryptKeys((key,)))
    ocicrypt.check_authorised([plain, annotations, second], DecryptKeys((key, other)))
    ocicrypt.check_authorised([plain], DecryptKeys())
    with pytest.raises(DecryptError, match="not authorised to decrypt layer 2"):
        ocicrypt.check_authorised([plain, annotations, second], DecryptKeys((key,)))
    # pubopts without wrapped keys: an encrypted layer whose keys were stripped.
    with pytest.raises(DecryptError, match=r"layer 0.*no wrapped keys"):
        ocicrypt.check_authorised([{PUBOPTS: annotations[PUBOPTS]}], DecryptKeys((key,)))


def test_pgp_without_gpg_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    keys = DecryptKeys(gpg_keyrings=(GpgKeyring("ring", b"\x95"),))
    with pytest.raises(DecryptError, match="install gnupg"):
        ocicrypt.unwrap_private_options({PGP: b64(b"msg")}, keys)


def test_pgp_passphrase_that_cannot_be_fed_to_gpg_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Refused before gpg would run, so no gpg is needed here.
    monkeypatch.setattr("shutil.which", lambda name: "/nonexistent/gpg")
    for passphrase in (b"a\nb", b"x" * 5000):
        keys = DecryptKeys(gpg_keyrings=(GpgKeyring("ring", b"\x95", passphrase),))
        with pytest.raises(DecryptError, match="passphrase is too long or spans lines"):
            ocicrypt.unwrap_private_options({PGP: b64(b"msg")}, keys)
