"""JWKs (RFC 7517, 7518 §6) for ocicrypt: RSA and EC private keys from JSON Web Keys,
EC public keys from and to JWKs (the `epk` of ECDH-ES), unpadded base64url, and the key
types every ocicrypt module speaks of. Pure: no I/O.

Apart from `jwe` and `keys` so that both can use it without importing each other.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, TypeAlias

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ec import (
    EllipticCurve,
    EllipticCurvePublicKey,
    EllipticCurvePublicNumbers,
)

from ocirt.errors import DecryptError

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

CURVE_SIZE = {"P-256": 32, "P-384": 48, "P-521": 66}


def b64url_decode(text: object, what: str) -> bytes:
    """Unpadded base64url (RFC 7515 §2), strictly: anything else is malformed."""
    if not isinstance(text, str):
        raise DecryptError(f"JWE {what} is not a string")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError(f"JWE {what} is not base64url") from exc


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def private_key_from_jwk(jwk: Mapping[str, Any]) -> PrivateKey:
    """An RSA or EC private key from a JWK (RFC 7518 §6.2.2, §6.3.2). Pure."""

    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            n, e, d = (_jwk_int(jwk, name) for name in ("n", "e", "d"))
            if "p" in jwk and "q" in jwk:
                p, q = _jwk_int(jwk, "p"), _jwk_int(jwk, "q")
            else:
                p, q = rsa.rsa_recover_prime_factors(n, e, d)
            public = rsa.RSAPublicNumbers(e, n)
            return rsa.RSAPrivateNumbers(
                p,
                q,
                d,
                rsa.rsa_crt_dmp1(d, p),
                rsa.rsa_crt_dmq1(d, q),
                rsa.rsa_crt_iqmp(p, q),
                public,
            ).private_key()
        if kty == "EC":
            curve = _curve(jwk.get("crv"))
            point = _ec_public_numbers(jwk, curve)
            return ec.EllipticCurvePrivateNumbers(_jwk_int(jwk, "d"), point).private_key()
    except ValueError as exc:
        raise DecryptError(f"invalid {kty} JWK: {exc}") from exc
    raise DecryptError(f"unsupported JWK key type {kty!r}")


def ec_public_key_from_jwk(jwk: object, curve: EllipticCurve) -> EllipticCurvePublicKey:
    """The `epk` of an ECDH-ES header; it must lie on `curve` (checked by cryptography)."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC":
        raise DecryptError("JWE epk is not an EC JWK")
    if _curve(jwk.get("crv")).name != curve.name:
        raise DecryptError("JWE epk is on another curve")
    try:
        return _ec_public_numbers(jwk, curve).public_key()
    except ValueError as exc:
        raise DecryptError("JWE epk is not a point on its curve") from exc


def ec_public_jwk(public: EllipticCurvePublicKey) -> dict[str, str]:
    name = curve_name(public.curve)
    size = CURVE_SIZE[name]
    numbers = public.public_numbers()
    return {
        "kty": "EC",
        "crv": name,
        "x": b64url(numbers.x.to_bytes(size, "big")),
        "y": b64url(numbers.y.to_bytes(size, "big")),
    }


def _curve(name: object) -> EllipticCurve:
    curves: dict[object, EllipticCurve] = {
        "P-256": ec.SECP256R1(),
        "P-384": ec.SECP384R1(),
        "P-521": ec.SECP521R1(),
    }
    if name not in curves:
        raise DecryptError(f"unsupported EC curve {name!r}")
    return curves[name]


def curve_name(curve: EllipticCurve) -> str:
    return {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(curve.name, "")


def _ec_public_numbers(jwk: Mapping[str, Any], curve: EllipticCurve) -> EllipticCurvePublicNumbers:
    size = CURVE_SIZE[curve_name(curve)]
    x, y = b64url_decode(jwk.get("x"), "JWK x"), b64url_decode(jwk.get("y"), "JWK y")
    if len(x) != size or len(y) != size:
        raise DecryptError("EC JWK coordinates have the wrong length")
    return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve)


def _jwk_int(jwk: Mapping[str, Any], name: str) -> int:
    if name not in jwk:
        raise DecryptError(f"JWK has no {name!r}")
    return int.from_bytes(b64url_decode(jwk[name], f"JWK {name}"), "big")
