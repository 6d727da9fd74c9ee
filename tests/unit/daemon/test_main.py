"""The composition root's pure pieces: the registry settings the image store gets."""

from __future__ import annotations

from ocirt.daemon.config import parse_config
from ocirt.daemon.main import _registry_settings
from ocirt.image.auth import Credentials, Transport


def test_registry_settings_carry_the_config() -> None:
    config = parse_config(
        {
            "containers": {
                "insecure_registries": ["localhost:5000"],
                "registry_configurations": {
                    "reg.example:443": {
                        "credentials": {"user_id": "u", "password": "p"},
                        "transport": {"root_ca": "/ca.pem", "client_cert": "/c.pem"},
                    },
                    "anon.example": {"transport": {"client_key": "/k.pem"}},
                },
            }
        }
    )
    settings = _registry_settings(config)
    assert settings.is_insecure("localhost:5000")
    assert not settings.is_insecure("localhost")
    with_creds = settings.config_for("reg.example:443")
    assert with_creds.credentials == Credentials("u", "p")
    assert with_creds.transport == Transport("/ca.pem", "/c.pem", "")
    anonymous = settings.config_for("anon.example")
    assert anonymous.credentials is None
    assert anonymous.transport == Transport("", "", "/k.pem")
    assert settings.config_for("other.example").credentials is None
