"""The `Healthcheck` of an image config (Docker's HealthConfig). Pure: no I/O.

Test: `["NONE"]` disables; `["CMD", arg...]` runs the arguments; `["CMD-SHELL", cmd]` runs
`/bin/sh -c cmd`; empty or absent means no check (there is no parent image to inherit
from here). Durations are nanoseconds; 0 means Docker's default (interval 30s, timeout
30s, start period 0s, retries 3). The input comes from an image: wrong types are
ImageErrors, and values are bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocirt.errors import ImageError

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_RETRIES = 3
# Docker refuses intervals and timeouts under 1 ms; ocirt also bounds the other end.
MIN_DURATION = 0.001
MAX_DURATION = 24 * 3600.0
MAX_TEST_ARGS = 256


@dataclass(frozen=True, slots=True)
class Healthcheck:
    argv: tuple[str, ...]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    start_period: float = DEFAULT_START_PERIOD
    retries: int = DEFAULT_RETRIES


def _seconds(raw: dict[str, object], key: str, default: float) -> float:
    value = raw.get(key)
    if value is None or value == 0:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ImageError(f"invalid image config: Healthcheck.{key} must be nanoseconds")
    seconds = value / 1e9
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise ImageError(f"invalid image config: Healthcheck.{key} is out of range")
    return seconds


def parse_healthcheck(raw: object) -> Healthcheck | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ImageError("invalid image config: Healthcheck must be an object")
    test = raw.get("Test")
    if test is None:
        return None
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise ImageError("invalid image config: Healthcheck.Test must be a list of strings")
    if not test or test[0] == "NONE":
        return None
    if len(test) > MAX_TEST_ARGS:
        raise ImageError("invalid image config: Healthcheck.Test is too long")
    kind, args = test[0], tuple(test[1:])
    if kind == "CMD":
        argv = args
    elif kind == "CMD-SHELL":
        argv = ("/bin/sh", "-c", " ".join(args))
    else:
        raise ImageError(f"invalid image config: unknown Healthcheck.Test kind {kind!r}")
    if not argv or not argv[0]:
        raise ImageError("invalid image config: Healthcheck.Test has no command")
    retries = raw.get("Retries")
    if retries is None or retries == 0:
        retries = DEFAULT_RETRIES
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 < retries <= 1000:
        raise ImageError("invalid image config: Healthcheck.Retries must be 1..1000")
    return Healthcheck(
        argv=argv,
        interval=_seconds(raw, "Interval", DEFAULT_INTERVAL),
        timeout=_seconds(raw, "Timeout", DEFAULT_TIMEOUT),
        start_period=_seconds(raw, "StartPeriod", DEFAULT_START_PERIOD),
        retries=retries,
    )
