"""The daemon's metrics service: the interval `ocirt stats` may ask for."""

from __future__ import annotations

import pytest

from ocirt.errors import InvalidArgument
from ocirt.metrics.service import MetricsService


@pytest.mark.parametrize("interval", [-1, 11, "1", True, float("nan"), None])
def test_bad_intervals_are_refused_before_anything_is_read(interval: object) -> None:
    service = MetricsService(lambda: [])
    with pytest.raises(InvalidArgument, match="interval"):
        service.stats(None, interval)
    assert service._collector is None
