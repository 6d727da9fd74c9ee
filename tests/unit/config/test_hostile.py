"""Untrusted input: wrong types, huge numbers and garbage give ValidationError, nothing else."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from ocirt.config import (
    load_json,
    parse_create,
    parse_create_with_config,
    parse_persisted,
    parse_persisted_json,
    parse_update,
)
from ocirt.errors import ValidationError

DATA = Path(__file__).parent / "data"
CREATE_WITH_CONFIG = json.loads((DATA / "create_with_config.json").read_text())
DESCRIPTOR = json.loads((DATA / "descriptor.json").read_text())
UPDATE = {
    "restartPolicy": {"type": "on-failure", "maxRetryCount": 3, "timeout": 10},
    "resources": {"memory": "500M", "memoryReservation": "300M", "memorySwap": "1G"},
}


def with_member(base: dict[str, object], path: str, value: object) -> dict[str, object]:
    """A deep copy of `base` with the member at "a.b.0.c" set to `value`."""
    result = copy.deepcopy(base)
    target: object = result
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]  # type: ignore[index]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value  # type: ignore[index]
    return result


@pytest.mark.parametrize(
    ("path", "value", "shown"),
    [
        ("imageRef", 42, "value.imageRef: expected a string, got a number"),
        ("start", "yes", "value.start: expected a boolean, got a string"),
        ("start", 1, "value.start: expected a boolean, got a number"),
        ("name", ["web"], "value.name: expected a string, got an array"),
        ("config", "{}", "value.config: expected an object, got a string"),
        ("config.env", "A=1", "value.config.env: expected an array of strings, got a string"),
        ("config.env", ["A=1", 2], "value.config.env[1]: expected a string, got a number"),
        ("config.cmd", {"0": "sh"}, "value.config.cmd: expected an array of strings"),
        ("config.privileged", "false", "value.config.privileged: expected a boolean"),
        ("config.networkMode", True, "value.config.networkMode: expected a string"),
        ("config.mountPoints", {}, "value.config.mountPoints: expected an array of objects"),
        ("config.mountPoints.0", "/a:/b", "value.config.mountPoints[0]: expected an object"),
        ("config.mountPoints.0", None, "value.config.mountPoints[0]: expected an object"),
        ("config.devices.0.pathOnHost", 7, "value.config.devices[0].pathOnHost"),
        ("config.portMappings.0.hostPort", -1, "value.config.portMappings[0].hostPort: -1"),
        ("config.portMappings.0.hostPort", 65536, "is outside 0..65535"),
        ("config.portMappings.0.hostPort", 2**64, "is outside 0..65535"),
        ("config.portMappings.0.hostPort", 80.0, "expected an integer, got a number"),
        ("config.portMappings.0.hostPort", True, "expected an integer, got a boolean"),
        ("config.portMappings.0.containerPort", "80", "expected an integer, got a string"),
        ("config.restartPolicy", [], "value.config.restartPolicy: expected an object"),
        ("config.restartPolicy.maxRetryCount", 2**63, "maxRetryCount"),
        ("config.restartPolicy.maxRetryCount", 1.5, "expected an integer"),
        ("config.restartPolicy.retryTimeout", "10s", "retryTimeout: expected a number"),
        ("config.restartPolicy.retryTimeout", 1e300, "retryTimeout: 1e+300 is outside"),
        ("config.restartPolicy.retryTimeout", 2**2000, "retryTimeout: a huge integer"),
        ("config.restartPolicy.retryTimeout", float("nan"), "retryTimeout: NaN is outside"),
        ("config.restartPolicy.retryTimeout", float("-inf"), "retryTimeout: -Infinity"),
        pytest.param(
            "config.portMappings.0.hostPort",
            10**5000,
            "hostPort: a huge integer is outside",
            id="hostPort-5000-digits",  # pytest cannot print such an int as an id
        ),
        ("config.log.maxFiles", 10**30, "value.config.log.maxFiles"),
        ("config.log.maxSize", 100, "value.config.log.maxSize: expected a string"),
        ("config.resources.memory", 512, "value.config.resources.memory: expected a string"),
        ("config.decryption.keys", [None], "value.config.decryption.keys[0]"),
    ],
)
def test_wrong_types_name_the_member(path: str, value: object, shown: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_create_with_config(with_member(CREATE_WITH_CONFIG, path, value))
    assert shown in caught.value.message
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("path", "value", "shown"),
    [
        ("image", "docker.io/x", "image: expected an object, got a string"),
        ("host_config.port_mappings.0.container_port", -80, "container_port: -80 is outside"),
        ("host_config.restart_policy.retry_timeout", 1.5e9, "retry_timeout: expected an integer"),
        ("host_config.restart_policy.retry_timeout", 2**63, "retry_timeout"),
        ("host_config.devices", "all", "host_config.devices: expected an array of objects"),
        ("host_config.log_config.driver_config", 1, "driver_config: expected an object"),
        ("io_config.tty", "true", "io_config.tty: expected a boolean"),
        ("config.env", [["A=1"]], "config.env[0]: expected a string, got an array"),
        ("container_id", 5, "container_id: expected a string"),
    ],
)
def test_wrong_types_in_a_descriptor(path: str, value: object, shown: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_persisted(with_member(DESCRIPTOR, path, value), default_id="x")
    assert shown in caught.value.message


@pytest.mark.parametrize("value", [None, [], "create", 1, True, [{"imageRef": "x"}]])
@pytest.mark.parametrize(
    "parse",
    [parse_create, parse_create_with_config, parse_update, parse_persisted],
)
def test_values_that_are_not_objects(value: object, parse: Callable[[object], object]) -> None:
    with pytest.raises(ValidationError, match="expected an object"):
        parse(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        '{"image": }',
        '{"a": NaN}',
        '{"a": Infinity}',
        "[" * 100_000 + "]" * 100_000,
        b"\xff\xfe{",
        '{"container_name": "x",}',  # the API document's trailing commas are not JSON
    ],
)
def test_malformed_json(text: str | bytes) -> None:
    with pytest.raises(ValidationError, match=r"^invalid JSON"):
        load_json(text)
    with pytest.raises(ValidationError):
        parse_persisted_json(text, default_id="x")


GARBAGE: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    2**70,
    -(2**70),
    10**5000,
    float("nan"),
    1.5,
    -1e308,
    "",
    "x",
    "\u0000",
    "é" * 1000,
    "-1",
    "HOST",
    [],
    [None],
    [[[[[]]]]],
    {},
    {"type": {"type": []}},
    ["A=1", {"x": 1}],
]


def _paths(node: object, prefix: str = "") -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = [(str(index), item) for index, item in enumerate(node)]
    else:
        return found
    for key, child in items:
        path = f"{prefix}.{key}" if prefix else key
        found.append(path)
        found.extend(_paths(child, path))
    return found


@pytest.mark.parametrize(
    ("base", "parse"),
    [
        (CREATE_WITH_CONFIG, parse_create_with_config),
        (CREATE_WITH_CONFIG, parse_create),
        (UPDATE, parse_update),
        (DESCRIPTOR, lambda value: parse_persisted(value, default_id="fuzz")),
    ],
    ids=["createWithConfig", "create", "update", "descriptor"],
)
def test_garbage_anywhere_is_a_validation_error_or_accepted(
    base: dict[str, object], parse: Callable[[object], object]
) -> None:
    rng = random.Random(7)
    paths = _paths(base)
    outcomes = {"refused": 0, "accepted": 0}
    for _ in range(1500):
        candidate = base
        for _ in range(rng.randint(1, 3)):
            path = rng.choice(paths)
            try:
                candidate = with_member(candidate, path, rng.choice(GARBAGE))
            except (KeyError, IndexError, TypeError, ValueError):
                continue  # an earlier replacement removed that path
        try:
            parse(candidate)
        except ValidationError:
            outcomes["refused"] += 1
        else:
            outcomes["accepted"] += 1
    # Both outcomes occur, so the garbage reached past the first type check.
    assert outcomes["refused"] > 50 and outcomes["accepted"] > 10, outcomes
