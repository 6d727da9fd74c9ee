"""The ocirt `limits` section of the daemon config (Kanto has none)."""

from __future__ import annotations

import pytest

from ocirt.daemon.config import LimitsSettings, parse_daemon_config
from ocirt.errors import InvalidArgument


def test_defaults() -> None:
    limits = parse_daemon_config({}).limits
    assert limits == LimitsSettings()
    assert limits.mqtt_max_message_size == 1024 * 1024
    assert (limits.create_workers, limits.control_workers) == (2, 4)


def test_every_key() -> None:
    limits = parse_daemon_config(
        {
            "limits": {
                "mqtt_max_message_size": 65536,
                "command_queue_size": 8,
                "create_workers": 1,
                "control_workers": 3,
                "api_max_connections": 5,
                "api_idle_timeout": "1m",
            }
        }
    ).limits
    assert limits == LimitsSettings(65536, 8, 1, 3, 5, 60.0)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"create_workers": 0}, "limits.create_workers must be an integer >= 1"),
        ({"mqtt_max_message_size": 10}, "limits.mqtt_max_message_size must be an integer"),
        ({"mqtt_max_message_size": 2 << 20}, "must be at most 1048576"),
        ({"api_idle_timeout": "0s"}, "limits.api_idle_timeout must be more than 0s"),
        ({"queue": 1}, "unknown configuration keys: limits.queue"),
    ],
)
def test_bad_values_are_named(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        parse_daemon_config({"limits": raw})
