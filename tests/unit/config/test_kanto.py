"""Kanto's persisted snake_case form: descriptors, create -f files, stored containers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocirt.config import parse_persisted, parse_persisted_json, to_persisted
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
NEW_ID = "9a0b8c7d-1e2f-4a3b-8c5d-6e7f8a9b0c1d"


def load(name: str) -> object:
    return json.loads((DATA / name).read_text())


def test_deployment_descriptor_loads_unchanged() -> None:
    loaded = parse_persisted(load("descriptor.json"), default_id=NEW_ID)
    definition = loaded.definition
    assert definition.id == NEW_ID
    assert definition.name == "telemetry-agent"
    assert definition.image_ref == "registry.example.local:5000/acme/telemetry-agent:2.3.1"
    assert definition.config == ContainerConfig(
        domain_name="edge.acme",
        host_name="telemetry",
        env=("LOG_LEVEL=debug", "HTTP_PROXY", "BROKER=tcp://ctrhost:1883"),
        cmd=("/usr/bin/agent", "--config", "/etc/agent/agent.yaml"),
        privileged=False,
        extra_hosts=("ctrhost:host_ip", "gateway:host_ip_eth0", "db:container_db-host"),
        extra_capabilities=("CAP_NET_ADMIN", "CAP_SYS_TIME"),
        network_mode=NetworkMode.BRIDGE,
        open_stdin=True,
        tty=True,
        mount_points=(
            MountPoint("/data/agent", "/var/lib/agent", Propagation.RSHARED),
            MountPoint("/etc/acme/agent", "/etc/agent", Propagation.RPRIVATE),
        ),
        decryption=Decryption(
            keys=("/etc/container-management/keys/agent.pem:s3cret",),
            recipients=("pkcs7:/etc/container-management/certs/agent.crt",),
        ),
        devices=(
            Device("/dev/ttyACM0", "/dev/modem", "rw"),
            Device("/dev/i2c-1", "/dev/i2c-1", "rwm"),
        ),
        restart_policy=RestartPolicy(RestartPolicyType.ON_FAILURE, 5, 30),
        port_mappings=(
            PortMapping(5683, 5683, 5683, PortProtocol.UDP, "127.0.0.1"),
            PortMapping(8080, 8080, 8080, PortProtocol.TCP, "0.0.0.0"),
        ),
        log=LogConfig(
            LogDriver.JSON_FILE, 5, "10M", "/var/log/agent", LogMode.NON_BLOCKING, "512K"
        ),
        resources=Resources("200M", "100M", "400M"),
    )
    assert dict(loaded.extras) == {}


def test_minimal_descriptors_from_kanto_tests() -> None:
    # containerm/pkg/testutil/config/container/{valid.json,nested/container-config.json}
    valid = parse_persisted_json(
        '{"container_name": "influxdb", "image": {"name": "docker.io/library/influxdb:1.8.4"}}',
        default_id=NEW_ID,
    ).definition
    assert valid.name == "influxdb"
    assert valid.config.host_name == "influxdb-host"
    nested = parse_persisted_json(
        b'{"image": {"name": "docker.io/library/redis:latest"}}', default_id=NEW_ID
    ).definition
    assert nested.name == NEW_ID
    assert nested.config.domain_name == f"{NEW_ID}-domain"


def test_stored_container_keeps_its_id_and_other_members() -> None:
    data = load("persisted.json")
    assert isinstance(data, dict)
    loaded = parse_persisted(data, default_id="ignored-when-the-file-has-one")
    assert loaded.definition.id == "4e2fd2b3-5e0c-4a39-9f07-2c7a7f0d91a1"
    assert loaded.definition.name == "influxdb"
    expected_extras = {
        key: data[key]
        for key in (
            "resolv_conf_path",
            "hosts_path",
            "hostname_path",
            "hooks",
            "network_settings",
            "state",
            "created",
            "restart_count",
            "manually_stopped",
            "started_successfully_before",
        )
    }
    assert dict(loaded.extras) == expected_extras
    with pytest.raises(TypeError):
        loaded.extras["state"] = None  # type: ignore[index]


def test_stored_container_round_trips_with_its_extras() -> None:
    data = load("persisted.json")
    assert isinstance(data, dict)
    loaded = parse_persisted(data)
    written = to_persisted(loaded.definition, loaded.extras)
    for key, value in loaded.extras.items():
        assert written[key] == value
    # Everything Kanto wrote about the configuration comes back the same.
    for key in ("container_id", "container_name", "image", "domain_name", "host_name"):
        assert written[key] == data[key]
    assert written["host_config"] == data["host_config"]
    assert written["io_config"] == data["io_config"]
    again = parse_persisted(json.loads(json.dumps(written)))
    assert again == loaded


def test_retry_timeout_is_nanoseconds() -> None:
    host = {"restart_policy": {"type": "on-failure", "retry_timeout": 2_500_000_000}}
    loaded = parse_persisted(
        {"image": {"name": "x"}, "host_config": host}, default_id=NEW_ID
    ).definition
    assert loaded.config.restart_policy.retry_timeout == 2
    written = to_persisted(loaded)
    assert written["host_config"]["restart_policy"]["retry_timeout"] == 2_000_000_000  # type: ignore[index]


def test_negative_retry_timeout_truncates_toward_zero() -> None:
    host = {"restart_policy": {"type": "always", "retry_timeout": -1_500_000_000}}
    loaded = parse_persisted({"image": {"name": "x"}, "host_config": host}, default_id=NEW_ID)
    assert loaded.definition.config.restart_policy.retry_timeout == -1


def test_enum_variants_in_a_descriptor() -> None:
    host = {
        "network_mode": "HOST",
        "restart_policy": {"type": "ON_FAILURE"},
        "log_config": {"driver_config": {"type": "NONE"}, "mode_config": {"mode": "NON_BLOCKING"}},
    }
    config = parse_persisted(
        {"image": {"name": "x"}, "host_config": host}, default_id=NEW_ID
    ).definition.config
    assert config.network_mode is NetworkMode.HOST
    assert config.restart_policy.type is RestartPolicyType.ON_FAILURE
    assert (config.log.driver, config.log.mode) == (LogDriver.NONE, LogMode.NON_BLOCKING)


def test_partial_log_config_takes_the_other_defaults() -> None:
    host = {"log_config": {"mode_config": {"mode": "non-blocking"}}}
    log = parse_persisted(
        {"image": {"name": "x"}, "host_config": host}, default_id=NEW_ID
    ).definition.config.log
    assert log == LogConfig(LogDriver.JSON_FILE, 2, "100M", "", LogMode.NON_BLOCKING, "1M")


def test_written_empty_arrays_do_not_conflict_with_privileged_on_reload() -> None:
    loaded = parse_persisted(
        {"image": {"name": "x"}, "host_config": {"privileged": True}}, default_id=NEW_ID
    )
    written = to_persisted(loaded.definition)
    assert parse_persisted(written).definition == loaded.definition


def test_an_id_is_needed() -> None:
    with pytest.raises(ValidationError, match=r"^container_id must be set$"):
        parse_persisted({"image": {"name": "x"}})


def test_extras_cannot_overwrite_the_configuration() -> None:
    loaded = parse_persisted({"image": {"name": "x"}}, default_id=NEW_ID)
    written = to_persisted(loaded.definition, {"host_name": "evil", "state": {"status": 1}})
    assert written["host_name"] == f"{NEW_ID}-host"
    assert written["state"] == {"status": 1}


def test_definition_id_type() -> None:
    loaded = parse_persisted({"image": {"name": "x"}}, default_id=NEW_ID)
    assert loaded.definition.id == ContainerId(NEW_ID)
