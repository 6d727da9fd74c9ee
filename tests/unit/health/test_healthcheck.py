from __future__ import annotations

from typing import Any

import pytest

from ocirt.errors import ImageError
from ocirt.health.healthcheck import Healthcheck, parse_healthcheck
from ocirt.spec.facts import ImageConfig


def test_docker_defaults() -> None:
    assert parse_healthcheck({"Test": ["CMD", "true"]}) == Healthcheck(
        ("true",), interval=30.0, timeout=30.0, start_period=0.0, retries=3
    )


def test_cmd_shell_and_durations() -> None:
    check = parse_healthcheck(
        {
            "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
            "Interval": 5_000_000_000,
            "Timeout": 2_000_000_000,
            "StartPeriod": 60_000_000_000,
            "Retries": 5,
        }
    )
    assert check == Healthcheck(
        ("/bin/sh", "-c", "curl -f http://localhost/ || exit 1"), 5.0, 2.0, 60.0, 5
    )


@pytest.mark.parametrize("raw", [None, {}, {"Test": []}, {"Test": ["NONE"]}])
def test_no_check(raw: Any) -> None:
    assert parse_healthcheck(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"Test": "CMD true"},
        {"Test": ["RUN", "x"]},
        {"Test": ["CMD"]},
        {"Test": ["CMD", "x"], "Interval": "5s"},
        {"Test": ["CMD", "x"], "Interval": 10},  # 10 ns: under Docker's 1 ms
        {"Test": ["CMD", "x"], "Retries": -1},
        {"Test": ["CMD", "x"], "Retries": True},
    ],
)
def test_bad_healthchecks_are_image_errors(raw: Any) -> None:
    with pytest.raises(ImageError):
        parse_healthcheck(raw)


def test_image_config_carries_it() -> None:
    config = ImageConfig.from_oci_json({"Healthcheck": {"Test": ["CMD", "true"]}})
    assert config.healthcheck == Healthcheck(("true",))
    assert ImageConfig.from_oci_json({}).healthcheck is None
