"""Registry authentication, sans I/O: challenge parsing, token requests and replies,
and the settings Kanto's ``containers.insecure_registries`` / ``registry_configurations``
give (docs/kanto-compatibility.md §6, §10). Pure: no I/O; client.py sends what this builds.

Distribution token auth (docker-registry spec/auth/token.md): a 401 carries
``WWW-Authenticate: Bearer realm=..,service=..,scope=..`` or ``Basic realm=..``; a token
comes from ``GET realm?service=..&scope=..`` (with Basic credentials when we have
them, anonymous otherwise) as ``{token|access_token, expires_in (default 60)}``.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from ocirt.errors import AuthenticationError

DEFAULT_TOKEN_LIFETIME = 60
# Renew a little early so a token never expires between check and use.
TOKEN_MARGIN = 5


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: str
    password: str

    def basic(self) -> str:
        raw = f"{self.user_id}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True)
class Transport:
    root_ca: str = ""
    client_cert: str = ""
    client_key: str = ""


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    credentials: Credentials | None = None
    transport: Transport = Transport()


@dataclass(frozen=True, slots=True)
class RegistryAccess:
    """Per-host registry settings; hosts are ``host[:port]`` matched exactly."""

    insecure: frozenset[str] = frozenset({"localhost"})
    configs: Mapping[str, RegistryConfig] = field(default_factory=dict)

    def config_for(self, host: str) -> RegistryConfig:
        return self.configs.get(host, RegistryConfig())

    def is_insecure(self, host: str) -> bool:
        return host in self.insecure


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str  # lower-case: "bearer" or "basic"
    params: Mapping[str, str]


_TOKEN68 = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse one ``WWW-Authenticate`` value, which may hold several challenges."""
    out: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        scheme_match = re.match(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)(\s+|$)", text[pos:])
        if not scheme_match:
            break
        pos += scheme_match.end()
        params: dict[str, str] = {}
        while pos < len(text):
            m = _TOKEN68.match(text, pos)
            if not m:
                break
            value = m.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[m.group(1).lower()] = value
            pos = m.end()
        out.append(Challenge(scheme_match.group(1).lower(), params))
    return out


def token_url(challenge: Challenge, scopes: list[str]) -> str:
    realm = challenge.params.get("realm", "")
    parsed = urllib.parse.urlsplit(realm)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise AuthenticationError(f"registry sent an unusable token realm {realm!r}")
    query = []
    if challenge.params.get("service"):
        query.append(("service", challenge.params["service"]))
    query.extend(("scope", s) for s in scopes)
    return realm + ("&" if parsed.query else "?") + urllib.parse.urlencode(query)


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_in: int


def parse_token_reply(body: bytes) -> Token:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthenticationError("token server reply is not JSON") from exc
    if not isinstance(doc, dict):
        raise AuthenticationError("token server reply is not a JSON object")
    value = doc.get("token") or doc.get("access_token")
    if not isinstance(value, str) or not value:
        raise AuthenticationError("token server reply has no token")
    expires = doc.get("expires_in", DEFAULT_TOKEN_LIFETIME)
    if not isinstance(expires, int) or isinstance(expires, bool) or expires <= 0:
        expires = DEFAULT_TOKEN_LIFETIME
    return Token(value, expires)


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"
