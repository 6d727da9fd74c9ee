"""The Metrics `request` value: Kanto's frequencies, texts and filter matching."""

from __future__ import annotations

from typing import Any

import pytest

from ocirt.errors import InvalidArgument
from ocirt.metrics.request import (
    MEASUREMENT_IDS,
    Filter,
    MetricsRequest,
    parse_frequency,
    parse_request,
)


@pytest.mark.parametrize(
    ("value", "period"),
    [
        ("5s", 5.0),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        ("250ms", 1.0),  # under a second becomes a second
        (3, 3.0),
        (2.5, 2.5),  # Kanto truncates to 2
        (0.5, 1.0),  # Kanto truncates to 0 and stops
        ("0s", None),
        ("0", None),
        (0, None),
        (-1, None),
        ("-5s", None),
        (None, None),
    ],
)
def test_frequency(value: Any, period: float | None) -> None:
    assert parse_frequency(value) == period


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("invalid frequency", 'time: invalid duration "invalid frequency"'),
        ("5", 'time: invalid duration "5"'),
        ("", 'time: invalid duration ""'),
        (True, "invalid duration: true"),
        ([1, "a"], "invalid duration: [1 a]"),
        ({"s": 1}, "invalid duration: map[s:1]"),
        (float("nan"), "invalid duration: nan"),
        (1e300, "invalid duration: 1e+300"),
    ],
)
def test_bad_frequency_has_kantos_text(value: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_frequency(value)
    assert caught.value.message == message
    assert caught.value.status == 400


def test_request_without_value_or_frequency_stops() -> None:
    assert parse_request(None) == MetricsRequest(None)
    assert parse_request({}) == MetricsRequest(None)
    assert parse_request({"filter": None, "other": 1}) == MetricsRequest(None)


def test_request_filters() -> None:
    value = {
        "frequency": "2s",
        "filter": [{"id": ["cpu.*"], "originator": "Container:a"}, {"originator": None}, {}],
    }
    assert parse_request(value) == MetricsRequest(
        2.0, (Filter(("cpu.*",), "Container:a"), Filter(), Filter())
    )


@pytest.mark.parametrize(
    "value",
    [
        "5s",
        [],
        {"frequency": "1s", "filter": "cpu"},
        {"frequency": "1s", "filter": ["cpu"]},
        {"frequency": "1s", "filter": [{"id": "cpu"}]},
        {"frequency": "1s", "filter": [{"id": [1]}]},
        {"frequency": "1s", "filter": [{"originator": 5}]},
    ],
)
def test_malformed_request_is_400(value: Any) -> None:
    with pytest.raises(InvalidArgument):
        parse_request(value)


def test_empty_filter_selects_everything() -> None:
    request = MetricsRequest(1.0)
    assert request.covers("x")
    assert request.selected("x") == frozenset(MEASUREMENT_IDS)


def test_container_selection() -> None:
    request = MetricsRequest(1.0, (Filter(("cpu.utilization",), "Container:a"),))
    assert request.covers("a")
    assert not request.covers("b")
    assert not request.covers("ab")
    assert request.selected("b") == frozenset()
    anyone = MetricsRequest(1.0, (Filter(("pids",), ""),))
    assert anyone.covers("b") and anyone.selected("b") == {"pids"}


@pytest.mark.parametrize("pattern", ["cpu", "cpu.*", "*", "", "*cpu*", "cpu.utilization"])
def test_patterns_that_select_cpu(pattern: str) -> None:
    assert Filter((pattern,)).selects("cpu.utilization")


@pytest.mark.parametrize("pattern", ["memory", "cpu.u*x", "cpu.utilization.more", "CPU"])
def test_patterns_that_do_not(pattern: str) -> None:
    assert not Filter((pattern,)).selects("cpu.utilization")


def test_items_for_one_container_add_up() -> None:
    request = MetricsRequest(
        1.0,
        (
            Filter(("cpu",), "Container:a"),
            Filter(("io.",), ""),
            Filter(("net.*",), "Container:b"),
        ),
    )
    assert request.selected("a") == {"cpu.utilization", "io.readBytes", "io.writeBytes"}
    assert request.selected("b") == {"io.readBytes", "io.writeBytes", "net.readBytes",
                                     "net.writeBytes"}  # fmt: skip
    # An item with no ids selects everything for its originator.
    assert MetricsRequest(1.0, (Filter((), "Container:a"),)).selected("a") == set(MEASUREMENT_IDS)


def test_to_value_round_trips() -> None:
    request = parse_request({"frequency": "1m", "filter": [{"id": ["pids"], "originator": "x"}]})
    assert request.to_value() == {
        "frequency": 60.0,
        "filter": [{"id": ["pids"], "originator": "x"}],
    }
    assert parse_request(request.to_value()) == request
