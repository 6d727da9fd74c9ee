from __future__ import annotations

import pytest

from ocirt.errors import AuthenticationError
from ocirt.image.registry.auth import (
    Credentials,
    RegistryAccess,
    RegistryConfig,
    Transport,
    parse_challenges,
    parse_token_reply,
    token_url,
)


def test_bearer_challenge() -> None:
    (c,) = parse_challenges(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:test/enc:pull"'
    )
    assert c.scheme == "bearer"
    assert c.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:test/enc:pull",
    }
    assert token_url(c, ["repository:test/enc:pull"]) == (
        "https://auth.example/token?service=registry.example&scope=repository%3Atest%2Fenc%3Apull"
    )


def test_several_challenges_and_quoting() -> None:
    challenges = parse_challenges('Basic realm="basic-realm", Bearer realm="x\\"y",service=s')
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[1].params == {"realm": 'x"y', "service": "s"}


def test_realm_must_be_http_url() -> None:
    (c,) = parse_challenges('Bearer realm="file:///etc/passwd"')
    with pytest.raises(AuthenticationError):
        token_url(c, [])


def test_token_reply_accepts_either_field() -> None:
    assert parse_token_reply(b'{"token":"t","expires_in":300}').value == "t"
    reply = parse_token_reply(b'{"access_token":"a"}')
    assert (reply.value, reply.expires_in) == ("a", 60)
    for bad in (b"nope", b"[]", b'{"token":""}', b'{"token":5}'):
        with pytest.raises(AuthenticationError):
            parse_token_reply(bad)


def test_registry_settings_lookup() -> None:
    # Built from the daemon's config by ocirt.daemon.main._registry_settings.
    s = RegistryAccess(
        configs={"reg:5000": RegistryConfig(Credentials("u", "p"), Transport(root_ca="/ca.pem"))}
    )
    assert s.is_insecure("localhost") and not s.is_insecure("localhost:5000")
    cfg = s.config_for("reg:5000")
    assert cfg.credentials == Credentials("u", "p")
    assert cfg.transport.root_ca == "/ca.pem"
    assert s.config_for("other:5000") == RegistryConfig()
    assert Credentials("u", "p").basic() == "Basic dTpw"
