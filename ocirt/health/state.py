"""Health state of one container run, Docker's rules. Pure: no I/O.

`starting` until the first success or until failures outside the start period reach
`retries`; a success makes it `healthy` and resets the streak; `retries` consecutive
failures make it `unhealthy`. Failures inside the start period do not count (Docker).
The last five results are kept, their output cut to 4 KiB (Docker's limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ocirt.health.healthcheck import Healthcheck

STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096


@dataclass(frozen=True, slots=True)
class Probe:
    start: str  # RFC 3339
    end: str
    exit_code: int  # -1: the probe could not run or timed out
    output: str

    def to_json(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "exitCode": self.exit_code,
                "output": self.output}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Health:
    status: str = STARTING
    failing_streak: int = 0
    log: tuple[Probe, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "failingStreak": self.failing_streak,
            "log": [p.to_json() for p in self.log],
        }


def record(health: Health, check: Healthcheck, probe: Probe, in_start_period: bool) -> Health:
    """The health after one probe."""
    probe = replace(probe, output=probe.output[:MAX_OUTPUT])
    log = (*health.log, probe)[-MAX_LOG_ENTRIES:]
    if probe.exit_code == 0:
        return Health(HEALTHY, 0, log)
    if in_start_period and health.status == STARTING:
        return replace(health, log=log)
    streak = health.failing_streak + 1
    status = UNHEALTHY if streak >= check.retries else health.status
    return Health(status, streak, log)
