"""Kanto's daemon config file: defaults, every section, warnings, errors, durations."""

from __future__ import annotations

from typing import Any

import pytest

from ocirt.daemon.config import DeploymentMode, LogLevel, parse_daemon_config
from ocirt.errors import InvalidArgument

KANTO_SAMPLE: dict[str, Any] = {
    "log": {"log_file": "/var/log/cm.log", "log_level": "debug", "log_file_count": 3,
            "log_file_size": 4, "log_file_max_age": 7, "syslog": True},
    "manager": {"home_dir": "/data/cm", "exec_root_dir": "/run/cm",
                "default_ctrs_stop_timeout": "1m30s", "container_client_sid": "x",
                "network_manager_sid": "y"},
    "containers": {"default_ns": "kanto-cm", "address_path": "/run/containerd.sock",
                   "runc_runtime": "io.containerd.runc.v2", "lease_id": "l",
                   "insecure_registries": ["localhost:5000"],
                   "registry_configurations": {"reg:443": {
                       "credentials": {"user_id": "u", "password": "p"},
                       "transport": {"root_ca": "/ca.pem"}}},
                   "image_dec_keys": ["/k.pem"], "image_dec_recipients": ["pkcs7:/c.pem"],
                   "image_expiry": "24h", "image_expiry_disable": True},
    "network": {"type": "bridge", "default_bridge": {"name": "br0", "mtu": 1400,
                                                       "ip4": "10.9.0.1/24"}},
    "things": {"enable": True, "home_dir": "/data/things",
               "features": ["ContainerFactory", "Metrics"]},
    "deployment": {"enable": False, "mode": "init", "ctr_dir": "/etc/ctrs"},
    "connection": {"broker_url": "ssl://broker:8883", "keep_alive": "250ms",
                   "client_username": "me", "client_password": "pw", "connect_timeout": 5,
                   "transport": {"root_ca": "/ca", "client_cert": "/c", "client_key": "/k"}},
}  # fmt: skip


def test_defaults_are_kantos() -> None:
    config = parse_daemon_config({})
    assert config.manager.home_dir == "/var/lib/container-management"
    assert config.manager.exec_root_dir == "/var/run/container-management"
    assert config.manager.default_ctrs_stop_timeout == 30.0
    assert config.connection.broker_url == "tcp://localhost:1883"
    assert config.connection.keep_alive == 20.0
    assert config.containers.insecure_registries == ("localhost",)
    assert config.containers.image_expiry == 744 * 3600
    assert config.network.default_bridge.name == "kanto-cm0"
    assert config.things.features == ("ContainerFactory", "SoftwareUpdatable", "Metrics")
    assert config.deployment.mode is DeploymentMode.UPDATE
    assert config.deployment.ctr_dir == "/etc/container-management/containers"
    assert config == parse_daemon_config({"log": None})
    assert config.warnings == ()


def test_every_honoured_key() -> None:
    config = parse_daemon_config(KANTO_SAMPLE)
    assert config.log.file == "/var/log/cm.log"
    assert config.log.level is LogLevel.DEBUG
    assert (config.log.file_count, config.log.file_size_mb, config.log.max_age_days) == (3, 4, 7)
    assert config.log.syslog
    assert config.manager.home_dir == "/data/cm"
    assert config.manager.default_ctrs_stop_timeout == 90.0
    assert config.containers.insecure_registries == ("localhost:5000",)
    registry = config.containers.registry_configurations["reg:443"]
    assert (registry.user_id, registry.password, registry.transport.root_ca) == (
        "u",
        "p",
        "/ca.pem",
    )
    assert config.containers.image_dec_keys == ("/k.pem",)
    assert config.containers.image_expiry == 24 * 3600
    assert config.containers.image_expiry_disable
    assert config.network.default_bridge.mtu == 1400
    assert config.network.default_bridge.ip4 == "10.9.0.1/24"
    assert config.things.home_dir == "/data/things"
    assert not config.deployment.enable
    assert config.deployment.mode is DeploymentMode.INIT
    assert config.connection.keep_alive == 0.25
    assert config.connection.connect_timeout == 5.0
    assert config.connection.transport.client_key == "/k"


def test_containerd_keys_warn_once() -> None:
    warnings = parse_daemon_config(KANTO_SAMPLE).warnings
    assert warnings[0] == (
        "not used, they configure containerd, which ocirt does not need: "
        "manager.container_client_sid, manager.network_manager_sid, containers.default_ns, "
        "containers.address_path, containers.runc_runtime, containers.lease_id"
    )
    # Metrics is served (issue 14): listing it draws no warning any more.
    assert not any("Metrics" in w for w in warnings)
    assert sum("containerd" in w for w in warnings) == 1


def test_software_updatable_is_a_feature() -> None:
    config = parse_daemon_config({"things": {"features": ["SoftwareUpdatable"]}})
    assert config.things.features == ("SoftwareUpdatable",)
    assert not any("SoftwareUpdatable" in w for w in config.warnings)


def test_tls_files_with_a_plain_broker_url_are_warned_about() -> None:
    raw = {"connection": {"broker_url": "tcp://b:1883", "transport": {"root_ca": "/ca"}}}
    assert parse_daemon_config(raw).warnings == (
        "connection.transport is ignored: connection.broker_url 'tcp://b:1883' does not use "
        "TLS (ssl://, tls://, mqtts://, mqtt+ssl://, tcps://)",
    )
    tls = {"connection": {"broker_url": "mqtts://b", "transport": {"client_cert": "/c"}}}
    assert parse_daemon_config(tls).warnings == ()


def test_local_connection_is_warned_about() -> None:
    assert parse_daemon_config({"local_connection": {}}).warnings == (
        "local_connection is not supported by ocirt; the section is ignored",
    )


def test_update_agent_section() -> None:
    assert parse_daemon_config({}).update_agent.enable is False
    agent = parse_daemon_config(
        {
            "update_agent": {
                "enable": True,
                "domain": "edge-containers",
                "system_containers": ["a", "b"],
                "verbose_inventory_report": True,
                "auto_apply": True,
                "activation_monitor": "2s",
                "activation_timeout": "1m",
            }
        }
    ).update_agent
    assert (agent.enable, agent.domain, agent.system_containers) == (
        True,
        "edge-containers",
        ("a", "b"),
    )
    assert agent.verbose_inventory_report and agent.auto_apply
    assert (agent.activation_monitor, agent.activation_timeout) == (2.0, 60.0)
    with pytest.raises(InvalidArgument, match=r"update_agent\.colour"):
        parse_daemon_config({"update_agent": {"colour": 1}})
    with pytest.raises(InvalidArgument, match=r"update_agent\.domain"):
        parse_daemon_config({"update_agent": {"domain": "a/b"}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"colour": 1}, "unknown configuration keys: colour"),
        ({"manager": {"home": "/x"}}, "unknown configuration keys: manager.home"),
        ({"connection": {"transport": {"ca": "x"}}},
         "unknown configuration keys: connection.transport.ca"),
        ({"containers": {"registry_configurations": {"h": {"credentials": {"user": "u"}}}}},
         "unknown configuration keys: containers.registry_configurations.h.credentials.user"),
        ({"network": {"default_bridge": {"nmae": "x"}}},
         "unknown network.default_bridge keys: nmae"),
        ({"log": {"log_level": "LOUD"}},
         "log.log_level must be one of ERROR, WARN, INFO, DEBUG, TRACE, not 'LOUD'"),
        ({"log": {"log_file_count": "3"}}, "log.log_file_count must be an integer >= 1"),
        ({"manager": {"default_ctrs_stop_timeout": "soon"}},
         "manager.default_ctrs_stop_timeout: invalid duration 'soon'"),
        ({"manager": {"default_ctrs_stop_timeout": "-5s"}},
         "manager.default_ctrs_stop_timeout must be a duration like 30s, or a number of seconds"),
        ({"manager": {"home_dir": "relative"}}, "manager.home_dir must be an absolute path"),
        ({"connection": {"broker_url": "ws://x"}},
         "connection.broker_url 'ws://x' must start with one of tcp://, mqtt://, ssl://, "
         "tls://, mqtts://, mqtt+ssl://, tcps://"),
        ({"connection": {"broker_url": "ssl://b:8883", "transport": {"client_key": "/k"}}},
         "connection.transport.client_key is set without connection.transport.client_cert"),
        ({"deployment": {"mode": "sometimes"}},
         "deployment.mode must be init or update, not 'sometimes'"),
        ({"things": {"features": ["Teleport"]}}, "things.features: unknown feature 'Teleport'"),
        ({"things": {"enable": "yes"}}, "things.enable must be a boolean"),
        ({"containers": {"insecure_registries": ["localhost", ""]}},
         "containers.insecure_registries must be a list of host names"),
        ({"containers": {"image_verifier_type": "notation"}},
         "containers.image_verifier_type 'notation' is not supported"),
        ({"network": {"default_bridge": {"disable": "yes"}}},
         "network.default_bridge.disable must be a boolean"),
        ({"update_agent": {"domain": "c", "colour": 1}},
         "unknown configuration keys: update_agent.colour"),
        ({"grpc_server": {"port": 1}}, "unknown configuration keys: grpc_server.port"),
        ({"things": {"connection": {"brokerurl": "x"}}},
         "unknown configuration keys: things.connection.brokerurl"),
        ({"containers": {"image_verifier_config": 3}},
         "containers.image_verifier_config must be an object of strings or key=value pairs"),
        ({"deployment": {"home_dir": "rel"}}, "deployment.home_dir must be an absolute path"),
        ({"network": {"home_dir": 1}}, "network.home_dir must be a string"),
        ([], "the configuration must be a JSON object"),
        ({"log": []}, "section log must be a JSON object"),
    ],
)  # fmt: skip
def test_errors_name_the_key(raw: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_daemon_config(raw)
    assert caught.value.message == message


def test_pull_stall_timeout_and_deadline() -> None:
    default = parse_daemon_config({}).containers
    assert (default.pull_stall_timeout, default.pull_deadline) == (60.0, 1800.0)
    set_ = parse_daemon_config(
        {"containers": {"pull_stall_timeout": "15s", "pull_deadline": "10m"}}
    ).containers
    assert (set_.pull_stall_timeout, set_.pull_deadline) == (15.0, 600.0)
    with pytest.raises(InvalidArgument, match="pull_stall_timeout and pull_deadline"):
        parse_daemon_config({"containers": {"pull_deadline": "0s"}})
