"""The value of the Metrics `request` operation, and what its filter selects. Pure.

Kanto's shape (docs/kanto-features-notes.md §2.1, features_metrics.go)::

    {"frequency": "5s" | <seconds>, "filter": [{"id": ["cpu.*"], "originator": "Container:<id>"}]}

A frequency that is absent, null or <= 0 stops reporting; one under a second is raised to
a second. Unlike Kanto, a number keeps its fraction: 0.5 means "every second", where Kanto
truncates it to 0 and stops. Errors carry Kanto's texts (Go's), so clients matching on
them keep working.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from ocirt.config.durations import parse_duration
from ocirt.errors import InvalidArgument

CPU_UTILIZATION = "cpu.utilization"
MEMORY_TOTAL = "memory.total"
MEMORY_USED = "memory.used"
MEMORY_UTILIZATION = "memory.utilization"
IO_READ = "io.readBytes"
IO_WRITE = "io.writeBytes"
NET_READ = "net.readBytes"
NET_WRITE = "net.writeBytes"
PIDS = "pids"

# Kanto's order inside one originator's measurements (docs/kanto-features-notes.md §2.1).
MEASUREMENT_IDS = (
    CPU_UTILIZATION,
    MEMORY_TOTAL,
    MEMORY_USED,
    MEMORY_UTILIZATION,
    IO_READ,
    IO_WRITE,
    NET_READ,
    NET_WRITE,
    PIDS,
)

ORIGINATOR_PREFIX = "Container:"
MIN_PERIOD = 1.0
# Go's time.Duration ends at ~292 years; a longer frequency is no duration Kanto accepts.
MAX_PERIOD = (2**63 - 1) / 1e9


@dataclass(frozen=True, slots=True)
class Filter:
    """One filter item: measurement id patterns for one originator ("" = any)."""

    ids: tuple[str, ...] = ()
    originator: str = ""

    def covers(self, container_id: str) -> bool:
        return not self.originator or self.originator == f"{ORIGINATOR_PREFIX}{container_id}"

    def selects(self, measurement: str) -> bool:
        if not self.ids:
            return True
        # Kanto: the exact id, or a prefix once '*' is trimmed from both ends
        # (strings.Trim), so "cpu", "cpu.*", "*" and "" all select cpu.utilization.
        return any(p == measurement or measurement.startswith(p.strip("*")) for p in self.ids)


@dataclass(frozen=True, slots=True)
class MetricsRequest:
    """A parsed request: `period` in seconds, None when reporting stops."""

    period: float | None
    filters: tuple[Filter, ...] = ()

    def covers(self, container_id: str) -> bool:
        """The container is reported at all."""
        return not self.filters or any(f.covers(container_id) for f in self.filters)

    def selected(self, container_id: str) -> frozenset[str]:
        """The measurement ids to report for one container (empty: none)."""
        if not self.filters:
            return frozenset(MEASUREMENT_IDS)
        items = [f for f in self.filters if f.covers(container_id)]
        return frozenset(m for m in MEASUREMENT_IDS if any(f.selects(m) for f in items))

    def to_value(self) -> dict[str, object]:
        """The request as a `request` value again (what the daemon persists)."""
        value: dict[str, object] = {"frequency": self.period or 0}
        if self.filters:
            value["filter"] = [
                {"id": list(f.ids), "originator": f.originator} for f in self.filters
            ]
        return value


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument(message)


def _go_value(value: object) -> str:
    """A JSON value the way Go's %v prints what it decoded into an interface{}."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted((str(k), _go_value(v)) for k, v in value.items())
        return "map[" + " ".join(f"{k}:{v}" for k, v in items) + "]"
    return str(value)


def parse_frequency(value: object) -> float | None:
    """Seconds between reports, None to stop. Raises InvalidArgument with Kanto's text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except InvalidArgument:
            raise _invalid(f"time: invalid duration {json.dumps(value)}") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise _invalid(f"invalid duration: {_go_value(value)}")
    if not math.isfinite(seconds) or abs(seconds) > MAX_PERIOD:
        raise _invalid(f"invalid duration: {value}")
    if seconds <= 0:
        return None
    return max(seconds, MIN_PERIOD)


def _filter_item(raw: object) -> Filter:
    if not isinstance(raw, dict):
        raise _invalid("invalid metrics filter: each item must be a JSON object")
    ids = raw.get("id")
    if ids is None:
        ids = []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _invalid('invalid metrics filter: "id" must be a list of strings')
    originator = raw.get("originator")
    if originator is None:
        originator = ""
    if not isinstance(originator, str):
        raise _invalid('invalid metrics filter: "originator" must be a string')
    return Filter(tuple(ids), originator)


def parse_request(value: object) -> MetricsRequest:
    """The `request` value. Unknown keys are ignored, as Go's decoder does."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise _invalid("invalid metrics request: the value must be a JSON object")
    period = parse_frequency(value.get("frequency"))
    raw_filter = value.get("filter")
    if raw_filter is None:
        raw_filter = []
    if not isinstance(raw_filter, list):
        raise _invalid('invalid metrics request: "filter" must be a list')
    return MetricsRequest(period, tuple(_filter_item(item) for item in raw_filter))
