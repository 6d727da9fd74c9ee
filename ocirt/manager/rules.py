"""Pure rules of the manager's use cases: stop options, times. No I/O.

Messages are Kanto's (`containerm/util/util_stop_opts.go`, docs/kanto-compatibility.md §2, §7).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from ocirt.errors import FailedPrecondition, InvalidArgument
from ocirt.logs.jsonline import format_time
from ocirt.manager.types import DEFAULT_STOP_TIMEOUT, StopOptions
from ocirt.runtime.signals import parse_signal

OOM_ERROR = "OOM Killed"
LOST_ERROR = "the container's monitor ended without recording its exit"
# The exit code recorded when the exit itself was lost (no exit record).
LOST_EXIT_CODE = -1


@dataclass(frozen=True, slots=True)
class Exit:
    """How a run ended, as the manager records it in the container's state."""

    exit_code: int
    finished_at: str
    oom_killed: bool = False
    error: str = ""

    @classmethod
    def lost(cls, detail: str = LOST_ERROR) -> Exit:
        return cls(LOST_EXIT_CODE, rfc3339nano(), error=detail)

    @classmethod
    def recorded(cls, exit_code: int, finished_at: datetime, oom_killed: bool) -> Exit:
        # Kanto reports an OOM kill as the error "OOM Killed" (containerm/util/containers.go).
        return cls(
            exit_code,
            rfc3339_datetime(finished_at),
            oom_killed,
            OOM_ERROR if oom_killed else "",
        )


@dataclass(frozen=True, slots=True)
class StopPlan:
    """Validated stop options: the signal as runc takes it, the wait, and the fallback."""

    signal: str
    timeout: float
    force: bool


def _show_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def plan_stop(options: StopOptions, default_timeout: float = DEFAULT_STOP_TIMEOUT) -> StopPlan:
    """Check options in Kanto's order: the timeout first, then the signal. A timeout of
    None is the manager's default."""
    timeout = default_timeout if options.timeout is None else options.timeout
    if timeout < 0:
        shown = _show_seconds(timeout)
        raise InvalidArgument(f"the timeout = {shown} shouldn't be negative")
    signal = parse_signal(options.signal or "SIGTERM")
    return StopPlan(signal=signal, timeout=float(timeout), force=options.force)


def stop_timed_out(container_id: str, signal_text: str) -> FailedPrecondition:
    """Kanto's error when the signal did not stop the container and force is false."""
    return FailedPrecondition(
        f"could not stop container with ID = {container_id} with {signal_text or 'SIGTERM'}"
    )


def rfc3339nano(epoch_ns: int | None = None) -> str:
    """UTC time (now by default) as Go's RFC3339Nano prints it, as the logs carry it."""
    return format_time(time.time_ns() if epoch_ns is None else epoch_ns)


def rfc3339_datetime(value: datetime) -> str:
    """A datetime as RFC3339Nano UTC text (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text + "Z"
