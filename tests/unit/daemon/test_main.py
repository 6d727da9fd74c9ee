"""The composition root's pure pieces: the registry settings the image store gets, and
what the image expiry sweep asks of the image store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from ocirt.daemon.config import parse_daemon_config
from ocirt.daemon.main import Daemon, _registry_settings, expire_images
from ocirt.errors import ImageError
from ocirt.image.auth import Credentials, Transport
from ocirt.image.store import GcReport


def test_registry_settings_carry_the_config() -> None:
    config = parse_daemon_config(
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


@dataclass
class _View:
    image_ref: str


@dataclass
class _Manager:
    views: list[_View]

    def list(self) -> list[_View]:
        return self.views


@dataclass
class _Images:
    answer: Any = None
    calls: list[tuple[set[str], float | None]] = field(default_factory=list)

    def gc(self, in_use: set[str], expiry: float | None) -> Any:
        self.calls.append((in_use, expiry))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


DISABLED = {"image_expiry": "2h", "image_expiry_disable": True}


@pytest.mark.parametrize(
    ("containers", "expiry"), [({"image_expiry": "2h"}, 7200.0), (DISABLED, None)]
)
def test_expiry_sweep_spares_images_in_use(
    containers: dict[str, Any], expiry: float | None
) -> None:
    images = _Images(GcReport(("old:1",), 2, 1))
    manager = _Manager([_View("busybox:latest"), _View("app:1"), _View("app:1")])
    daemon = Daemon(parse_daemon_config({"containers": containers}), manager, images=images)
    expire_images(daemon)
    assert images.calls == [({"busybox:latest", "app:1"}, expiry)]


@pytest.mark.parametrize("answer", [None, ImageError("store damaged"), OSError(5, "EIO")])
def test_expiry_sweep_that_cannot_run_leaves_the_daemon_up(answer: Any) -> None:
    images = _Images(answer)
    daemon = Daemon(parse_daemon_config({}), _Manager([]), images=images)
    expire_images(daemon)  # a pull under way (None) or a failing store: logged, not raised
    assert images.calls == [(set(), 744 * 3600.0)]
