"""The Ditto forms: create, createWithConfig, update, and status.config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocirt.config import (
    ContainerUpdate,
    apply_update,
    new_definition,
    parse_container_config,
    parse_create,
    parse_create_with_config,
    parse_update,
    to_ditto_config,
)
from ocirt.config.model import (
    ContainerConfig,
    ContainerId,
    Decryption,
    Device,
    LogConfig,
    LogDriver,
    LogMode,
    MountPoint,
    NetworkMode,
    PortMapping,
    PortProtocol,
    Propagation,
    Resources,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.errors import ValidationError

DATA = Path(__file__).parent / "data"
ID = ContainerId("6f1c2a8e-2b1d-4a57-8c0e-5d9b1e2f3a4b")


def test_create() -> None:
    request = parse_create(
        {"imageRef": "docker.io/library/influxdb:1.8.4", "start": True, "cmd": ["ignored"]}
    )
    assert (request.image_ref, request.start, request.name) == (
        "docker.io/library/influxdb:1.8.4",
        True,
        None,
    )
    definition = new_definition(ID, request)
    assert definition.name == ID
    assert definition.config.host_name == f"{ID}-host"
    assert definition.config.env == ()


def test_create_start_defaults_to_false_and_image_is_required() -> None:
    assert parse_create({"imageRef": "busybox"}).start is False
    with pytest.raises(ValidationError, match=r"^imageRef must be set$"):
        parse_create({"imageRef": "", "start": True})


def test_feature_value_after_create_matches_kanto() -> None:
    # docs/kanto-compatibility.md §2, "Feature value after create": a default config, byte for byte.
    definition = new_definition(ID, parse_create({"imageRef": "influxdb:1.8.4", "start": False}))
    expected = (
        f'{{"domainName":"{ID}-domain","hostName":"{ID}-host",'
        '"restartPolicy":{"type":"UNLESS_STOPPED"},"networkMode":"BRIDGE",'
        '"log":{"type":"JSON_FILE","maxFiles":2,"maxSize":"100M","mode":"BLOCKING"}}'
    )
    assert json.dumps(to_ditto_config(definition.config), separators=(",", ":")) == expected


def test_create_with_config_example_from_the_api_document() -> None:
    value = json.loads((DATA / "create_with_config.json").read_text())
    request = parse_create_with_config(value)
    assert request.image_ref == "docker.io/library/influxdb:1.8.4"
    assert request.start is True
    assert request.name is None
    definition = new_definition(ID, request)
    config = definition.config
    assert config == ContainerConfig(
        domain_name=f"{ID}-domain",
        host_name=f"{ID}-host",
        extra_hosts=("ctrhost:host_ip",),
        network_mode=NetworkMode.BRIDGE,
        mount_points=(
            MountPoint("/var/lib/influxdb-data", "/var/lib/influxdb", Propagation.RPRIVATE),
        ),
        devices=(Device("/dev/ttyUSB0", "/dev/ttyUSB0", "rwm"),),
        restart_policy=RestartPolicy(RestartPolicyType.UNLESS_STOPPED, 0, 0),
        port_mappings=(PortMapping(80, 5000, 5005, PortProtocol.TCP, "0.0.0.0"),),
        # maxBufferSize "1M" is discarded in blocking mode, as Kanto's FillDefaults does.
        log=LogConfig(LogDriver.JSON_FILE, 2, "100M", "", LogMode.BLOCKING, ""),
        resources=Resources(),
    )


def test_create_with_config_name_and_full_status_config() -> None:
    value = {
        "imageRef": "registry.local:5000/acme/agent:2",
        "name": "agent",
        "start": False,
        "config": {
            "env": ["A=1"],
            "cmd": ["/bin/agent", "-v"],
            "openStdin": True,
            "tty": True,
            "decryption": {"keys": ["/k.pem:pw"], "recipients": ["pkcs7:/c.crt"]},
            "restartPolicy": {"type": "on-failure", "maxRetryCount": 3, "retryTimeout": 12.9},
            "portMappings": [{"proto": "UDP", "containerPort": 53, "hostPort": 5353}],
            "log": {"type": "none", "mode": "non_blocking", "rootDir": "/logs"},
            "resources": {"memory": "64m", "memoryReservation": "32m"},
        },
    }
    definition = new_definition(ID, parse_create_with_config(value))
    assert definition.name == "agent"
    assert definition.config.restart_policy.retry_timeout == 12  # truncated, as Kanto does
    assert to_ditto_config(definition.config) == {
        "domainName": "agent-domain",
        "hostName": "agent-host",
        "env": ["A=1"],
        "cmd": ["/bin/agent", "-v"],
        "decryption": {"keys": ["/k.pem:pw"], "recipients": ["pkcs7:/c.crt"]},
        "restartPolicy": {"maxRetryCount": 3, "retryTimeout": 12, "type": "ON_FAILURE"},
        "portMappings": [
            {
                "proto": "udp",
                "hostPort": 5353,
                "hostPortEnd": 5353,
                "containerPort": 53,
                "hostIP": "0.0.0.0",
            }
        ],
        "networkMode": "BRIDGE",
        "openStdin": True,
        "tty": True,
        "log": {"type": "NONE", "rootDir": "/logs", "mode": "NON_BLOCKING", "maxBufferSize": "1M"},
        "resources": {"memory": "64m", "memoryReservation": "32m", "memorySwap": "128m"},
    }


def test_create_with_config_without_config_or_with_null_members() -> None:
    bare = parse_create_with_config({"imageRef": "busybox", "start": True})
    nulls = parse_create_with_config(
        {
            "imageRef": "busybox",
            "start": True,
            "name": None,
            "config": {"env": None, "log": None, "restartPolicy": None, "hostName": None},
        }
    )
    assert bare == nulls
    assert bare.config.restart_policy.type is RestartPolicyType.UNLESS_STOPPED


@pytest.mark.parametrize(
    ("member", "variants", "read"),
    [
        (
            {"networkMode": "{}"},
            ["host", "HOST", "Host"],
            lambda c: c.network_mode is NetworkMode.HOST,
        ),
        (
            {"restartPolicy": {"type": "{}"}},
            ["unless-stopped", "UNLESS_STOPPED", "unless_stopped", "UNLESS-STOPPED"],
            lambda c: c.restart_policy.type is RestartPolicyType.UNLESS_STOPPED,
        ),
        (
            {"restartPolicy": {"type": "{}"}},
            ["on-failure", "ON_FAILURE", "On_Failure"],
            lambda c: c.restart_policy.type is RestartPolicyType.ON_FAILURE,
        ),
        (
            {"log": {"type": "{}"}},
            ["json-file", "JSON_FILE", "json_file"],
            lambda c: c.log.driver is LogDriver.JSON_FILE,
        ),
        (
            {"log": {"mode": "{}"}},
            ["non-blocking", "NON_BLOCKING", "Non-Blocking"],
            lambda c: c.log.mode is LogMode.NON_BLOCKING,
        ),
        (
            {"mountPoints": [{"source": "/a", "destination": "/b", "propagationMode": "{}"}]},
            ["rshared", "RSHARED", "rShared"],
            lambda c: c.mount_points[0].propagation is Propagation.RSHARED,
        ),
        (
            {"portMappings": [{"proto": "{}", "containerPort": 1, "hostPort": 1}]},
            ["udp", "UDP"],
            lambda c: c.port_mappings[0].proto is PortProtocol.UDP,
        ),
    ],
)
def test_enums_in_either_case_and_separator(
    member: dict[str, object], variants: list[str], read: object
) -> None:
    # Decision 4. Kanto turns lower-case "rshared" into rprivate; ocirt keeps it.
    for variant in variants:
        config = json.loads(json.dumps(member).replace("{}", variant))
        assert read(parse_container_config(config)), variant  # type: ignore[operator]


def test_empty_enum_members_take_defaults() -> None:
    config = parse_container_config(
        {
            "networkMode": "",
            "log": {"type": "", "mode": ""},
            "mountPoints": [{"source": "/a", "destination": "/b", "propagationMode": ""}],
            "portMappings": [{"proto": "", "containerPort": 1, "hostPort": 1}],
        }
    )
    assert config.network_mode is NetworkMode.BRIDGE
    assert (config.log.driver, config.log.mode) == (LogDriver.JSON_FILE, LogMode.BLOCKING)
    assert config.mount_points[0].propagation is Propagation.RPRIVATE
    assert config.port_mappings[0].proto is PortProtocol.TCP


def test_sizes_with_bytes_and_decimals_are_accepted() -> None:
    # Decision 5.
    config = parse_container_config(
        {
            "log": {"maxSize": "1.5m", "mode": "non-blocking", "maxBufferSize": "65536B"},
            "resources": {"memory": "0.25G", "memorySwap": "512m"},
        }
    )
    assert (config.log.max_size, config.log.max_buffer_size) == ("1.5m", "65536B")
    assert config.resources.memory == "0.25G"


# update


def test_update_example_from_the_api_document() -> None:
    # The example of Kanto's Container API doc uses "timeout"
    # (docs/kanto-compatibility.md decision 6).
    update = parse_update(
        {
            "restartPolicy": {"type": "on-failure", "maxRetryCount": 3, "timeout": 10},
            "resources": {"memory": "500M", "memoryReservation": "300M", "memorySwap": "1G"},
        }
    )
    assert update == ContainerUpdate(
        restart_policy=RestartPolicy(RestartPolicyType.ON_FAILURE, 3, 10),
        resources=Resources("500M", "300M", "1G"),
    )


def test_update_retry_timeout_wins_over_timeout() -> None:
    update = parse_update(
        {"restartPolicy": {"type": "ON_FAILURE", "retryTimeout": 7, "timeout": 9}}
    )
    assert update.restart_policy == RestartPolicy(RestartPolicyType.ON_FAILURE, 0, 7)


def test_update_parts_are_optional_and_empty_resources_remove_limits() -> None:
    assert parse_update({}) == ContainerUpdate(None, None)
    assert parse_update({"resources": {}}) == ContainerUpdate(None, Resources())
    assert parse_update({"restartPolicy": {"type": "ALWAYS"}}).resources is None


def test_update_fills_swap_like_create() -> None:
    update = parse_update({"resources": {"memory": "100M"}})
    assert update.resources == Resources("100M", "", "200M")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"restartPolicy": {}}, "unsupported restart policy type "),
        ({"restartPolicy": {"type": "maybe"}}, "unsupported restart policy type maybe"),
        (
            {"restartPolicy": {"type": "always", "maxRetryCount": 2}},
            "cannot use max retry count when the restart policy is always",
        ),
        (
            {"restartPolicy": {"type": "on-failure", "timeout": -1}},
            "restart policy retry timeout cannot be negative",
        ),
        ({"resources": {"memory": "1M"}}, "minimum memory allowed is 3M"),
        (
            {"restartPolicy": {"type": "nope"}, "resources": {"memory": "1M"}},
            "unsupported restart policy type nope",
        ),
    ],
)
def test_update_validates_restart_policy_then_resources(
    value: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_update(value)
    assert caught.value.message == message


def test_update_ignores_other_config() -> None:
    # Kanto validates only these two parts; anything else in the value is ignored.
    assert parse_update({"networkMode": "nonsense", "env": ["1=2"]}) == ContainerUpdate()


def test_apply_update() -> None:
    definition = new_definition(
        ID,
        parse_create_with_config(
            {"imageRef": "busybox", "config": {"resources": {"memory": "64M"}, "env": ["A=1"]}}
        ),
    )
    policy_only = apply_update(definition, parse_update({"restartPolicy": {"type": "ALWAYS"}}))
    assert policy_only.config.restart_policy == RestartPolicy(RestartPolicyType.ALWAYS)
    assert policy_only.config.resources == Resources("64M", "", "128M")
    # ctr_instance_test.go expects exactly {"type":"ALWAYS"} after this update.
    assert to_ditto_config(policy_only.config)["restartPolicy"] == {"type": "ALWAYS"}
    cleared = apply_update(policy_only, parse_update({"resources": {}}))
    assert cleared.config.resources == Resources()
    assert "resources" not in to_ditto_config(cleared.config)
    assert cleared.config.env == ("A=1",)


def test_status_config_omits_empty_members() -> None:
    config = ContainerConfig(
        domain_name="d",
        host_name="h",
        decryption=Decryption(keys=("k",)),
        devices=(Device("/dev/a", "/dev/a", ""),),
    )
    out = to_ditto_config(config)
    assert out["decryption"] == {"keys": ["k"]}
    assert out["devices"] == [{"pathOnHost": "/dev/a", "pathInContainer": "/dev/a"}]
    assert "mountPoints" not in out and "privileged" not in out and "env" not in out
