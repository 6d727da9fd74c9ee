"""Kanto's own daemon config files, as Kanto ships and documents them, load unchanged.

The texts below are copied verbatim from Eclipse Kanto: its test fixtures
(container-management `containerm/pkg/testutil/config/*.json`) and the example and template
of its "Manager configuration" page (kanto `web/site/content/docs/references/containers/
container-manager-config.md`).
"""

from __future__ import annotations

import json

import pytest

from ocirt.daemon.config import DeploymentMode, LogLevel, parse_daemon_config, with_overrides
from ocirt.errors import InvalidArgument

# containerm/pkg/testutil/config/daemon-config.json
KANTO_TEST_FIXTURE = """{
  "log": {
    "log_file": "log/container-management.log",
    "log_level": "INFO",
    "log_file_count": 5,
    "log_file_size": 2,
    "log_file_max_age": 28,
    "syslog": false
  },
  "manager": {
    "home_dir": "/var/lib/container-management",
    "exec_root_dir": "/var/run/container-management",
    "container_client_sid": "container-management.service.local.v1.service-containerd-client",
    "network_manager_sid": "container-management.service.local.v1.service-libnetwork-manager",
    "default_ctrs_stop_timeout": "30s"
  },
  "containers": {
    "default_ns": "kanto-cm",
    "address_path": "/run/containerd/containerd.sock",
    "insecure_registries": [
      "localhost"
    ],
    "exec_root_dir": "/var/run/container-management",
    "home_dir": "/var/lib/container-management",
    "runc_runtime": "io.containerd.runc.v2",
    "image_expiry": "744h",
    "image_expiry_disable": false,
    "lease_id": "kanto-cm.lease",
    "image_verifier_type": "none"
  },
  "network": {
    "type": "bridge",
    "home_dir": "/var/lib/container-management",
    "exec_root_dir": "/var/run/container-management",
    "default_bridge": {
      "name": "kanto-cm0",
      "mtu": 1500,
      "icc": true,
      "ip_tables": true,
      "ip_forward": true,
      "ip_masq": true
    }
  },
  "grpc_server": {
    "protocol": "unix",
    "address_path": "/run/container-management/container-management.sock"
  },
  "things": {
    "enable": true,
    "home_dir": "/var/lib/container-management",
    "features": [
      "ContainerFactory",
      "SoftwareUpdatable",
      "Metrics"
    ],
    "connection": {
      "broker_url": "tcp://localhost:1883",
      "keep_alive": 20000,
      "disconnect_timeout": 250,
      "client_username": "",
      "client_password": "",
      "connect_timeout": 30000,
      "acknowledge_timeout": 15000,
      "subscribe_timeout": 15000,
      "unsubscribe_timeout": 5000
    }
  },
  "deployment": {
    "enable": true,
    "mode": "update",
    "home_dir": "/var/lib/container-management",
    "ctr_dir": "/etc/container-management/containers"
  },
  "update_agent": {
    "enable": false,
    "domain": "containers",
    "system_containers": [],
    "verbose_inventory": false
  },
  "connection": {
    "broker_url": "tcp://localhost:1883",
    "keep_alive": "20s",
    "disconnect_timeout": "250ms",
    "client_username": "",
    "client_password": "",
    "connect_timeout": "30s",
    "acknowledge_timeout": "15s",
    "subscribe_timeout": "15s",
    "unsubscribe_timeout": "5s"
  }
}
"""

# The "Template" of Kanto's manager configuration page: "all possible properties with
# their default values".
KANTO_DOCS_TEMPLATE = """{
    "manager": {
        "home_dir": "/var/lib/container-management",
        "exec_root_dir": "/var/run/container-management",
        "container_client_sid": "container-management.service.local.v1.service-containerd-client",
        "network_manager_sid": "container-management.service.local.v1.service-libnetwork-manager",
        "default_ctrs_stop_timeout": 30
    },
    "containers": {
        "default_ns": "kanto-cm",
        "address_path": "/run/containerd/containerd.sock",
        "exec_root_dir": "/var/run/container-management",
        "home_dir": "/var/lib/container-management",
        "image_dec_keys": [],
        "image_dec_recipients": [],
        "runc_runtime": "io.containerd.runc.v2",
        "image_expiry": "744h",
        "image_expiry_disable": false,
        "image_verifier_type": "none",
        "image_verifier_config": "configDir=/home/user/.config/notation",
        "lease_id": "kanto-cm.lease",
        "registry_configurations": {
            "": {
                "credentials": {
                    "user_id": "",
                    "password": ""
                },
                "transport": {
                    "root_ca": "",
                    "client_cert": "",
                    "client_key": ""
                }
            }
        },
        "insecure_registries": [
            "localhost"
        ]
    },
    "network": {
        "home_dir": "/var/lib/container-management",
        "exec_root_dir": "/var/run/container-management",
        "default_bridge": {
            "name": "kanto-cm0",
            "ip4": "",
            "fcidr4": "",
            "enable_ip6": false,
            "mtu": 1500,
            "icc": true,
            "ip_tables": true,
            "ip_forward": true,
            "ip_masq": true,
            "userland_proxy": false
        }
    },
    "grpc_server": {
        "protocol": "unix",
        "address_path": "/run/container-management/container-management.sock"
    },
    "things": {
        "enable": true,
        "home_dir": "/var/lib/container-management",
        "features": [
            "ContainerFactory",
            "SoftwareUpdatable",
            "Metrics"
        ],
        "connection": {
            "broker_url": "tcp://localhost:1883",
            "keep_alive": 20000,
            "disconnect_timeout": 250,
            "client_username": "",
            "client_password": "",
            "connect_timeout": 30000,
            "acknowledge_timeout": 15000,
            "subscribe_timeout": 15000,
            "unsubscribe_timeout": 5000,
            "transport": {
                "root_ca": "",
                "client_cert": "",
                "client_key": ""
            }
        }
    },
    "log": {
        "log_file": "log/container-management.log",
        "log_level": "INFO",
        "log_file_count": 5,
        "log_file_size": 2,
        "log_file_max_age": 28,
        "syslog": false
    },
    "deployment": {
        "enable": true,
        "mode": "update",
        "home_dir": "/var/lib/container-management",
        "ctr_dir": "/etc/container-management/containers"
    }
}
"""

# The page's "Example": "the minimal required configuration".
KANTO_DOCS_EXAMPLE = """{
    "manager": {
        "default_ctrs_stop_timeout": 5
    },
    "log": {
        "log_file": "/var/log/container-management/container-management.log"
    }
}
"""

# containerm/pkg/testutil/config/daemon-things-tls-config.json
KANTO_THINGS_TLS_FIXTURE = """{
  "things": {
    "connection": {
      "transport": {
        "root_ca": "ca.crt",
        "client_cert": "client.crt",
        "client_key": "client.key"
     }
    }
  }
}"""

# containerm/pkg/testutil/config/daemon-mgr-default-ctrs-stop-timeout-config.json and
# daemon-things-features-config.json
KANTO_STOP_TIMEOUT_FIXTURE = """{
  "manager": {
    "default_ctrs_stop_timeout": 15
  }
}"""
KANTO_FEATURES_FIXTURE = """{
  "things": {
    "features" : ["ContainerFactory"]
  }
}"""

CONTAINERD_WARNING = (
    "not used, they configure containerd, which ocirt does not need: "
    "manager.container_client_sid, manager.network_manager_sid, containers.default_ns, "
    "containers.address_path, containers.runc_runtime, containers.lease_id"
)
GRPC_WARNING = (
    "grpc_server is not used: ocirt has no gRPC API (its CLI talks to the local API socket "
    "ocirt.sock in manager.exec_root_dir)"
)
OLD_CONNECTION_WARNING = (
    "things.connection is not used (Kanto reads the top-level connection section)"
)


def test_kantos_test_fixture_loads_unchanged() -> None:
    config = parse_daemon_config(json.loads(KANTO_TEST_FIXTURE))
    assert config.log.file == "log/container-management.log"
    assert config.log.level is LogLevel.INFO
    assert config.manager.home_dir == "/var/lib/container-management"
    assert config.manager.default_ctrs_stop_timeout == 30.0
    assert config.containers.insecure_registries == ("localhost",)
    assert config.containers.image_expiry == 744 * 3600
    assert config.network.default_bridge.name == "kanto-cm0"
    assert not config.network.bridge_disabled
    assert config.deployment.mode is DeploymentMode.UPDATE
    assert config.deployment.home_dir == "/var/lib/container-management"
    # The top-level block is the one in force, not the old things.connection.
    assert (config.connection.keep_alive, config.connection.disconnect_timeout) == (20.0, 0.25)
    assert config.connection.unsubscribe_timeout == 5.0
    # Each kind of thing ocirt does not use is said once; the directory aliases agree
    # with the manager's, so they are not worth a word.
    assert config.warnings == (
        CONTAINERD_WARNING,
        OLD_CONNECTION_WARNING,
        GRPC_WARNING,
    )


def test_kantos_documented_template_loads_unchanged() -> None:
    config = parse_daemon_config(json.loads(KANTO_DOCS_TEMPLATE))
    assert config.manager.default_ctrs_stop_timeout == 30.0
    assert config.containers.registry_configurations == {}
    assert config.network.default_bridge.ip4 == ""
    assert config.things.features == ("ContainerFactory", "SoftwareUpdatable", "Metrics")
    assert config.deployment.ctr_dir == "/etc/container-management/containers"
    assert config.warnings == (
        CONTAINERD_WARNING,
        OLD_CONNECTION_WARNING,
        GRPC_WARNING,
    )


def test_kantos_documented_example_and_small_fixtures_load() -> None:
    example = parse_daemon_config(json.loads(KANTO_DOCS_EXAMPLE))
    assert example.manager.default_ctrs_stop_timeout == 5.0
    assert example.log.file == "/var/log/container-management/container-management.log"
    assert example.warnings == ()
    assert parse_daemon_config(json.loads(KANTO_STOP_TIMEOUT_FIXTURE)).manager == (
        parse_daemon_config({}).manager.__class__(default_ctrs_stop_timeout=15.0)
    )
    features = parse_daemon_config(json.loads(KANTO_FEATURES_FIXTURE))
    assert features.things.features == ("ContainerFactory",)
    tls = parse_daemon_config(json.loads(KANTO_THINGS_TLS_FIXTURE))
    assert tls.connection.transport.root_ca == ""
    assert tls.warnings == (OLD_CONNECTION_WARNING,)


def test_the_template_with_a_registry_host_filled_in_is_honoured() -> None:
    raw = json.loads(KANTO_DOCS_TEMPLATE)
    entries = raw["containers"]["registry_configurations"]
    entries["reg.example:5000"] = entries.pop("")
    entries["reg.example:5000"]["credentials"] = {"user_id": "u", "password": "p"}
    config = parse_daemon_config(raw)
    assert config.containers.registry_configurations["reg.example:5000"].user_id == "u"
    assert not any("host name" in w for w in config.warnings)
    raw["containers"]["registry_configurations"] = {"": {"credentials": {"user_id": "u"}}}
    assert (
        "containers.registry_configurations: the entry without a host name is ignored"
        in parse_daemon_config(raw).warnings
    )


def test_directory_aliases_are_warned_about_only_when_they_differ() -> None:
    raw = {
        "manager": {"home_dir": "/data/cm", "exec_root_dir": "/run/cm"},
        "containers": {"home_dir": "/data/cm/", "exec_root_dir": "/var/run/container-management"},
        "network": {"home_dir": "/data/net"},
    }
    assert parse_daemon_config(raw).warnings == (
        "containers.exec_root_dir (/var/run/container-management) is not used: ocirt keeps "
        "this state under manager.exec_root_dir (/run/cm)",
        "network.home_dir (/data/net) is not used: ocirt keeps this state under "
        "manager.home_dir (/data/cm)",
    )


def test_disable_means_no_bridge() -> None:
    config = parse_daemon_config({"network": {"default_bridge": {"disable": True, "mtu": 1400}}})
    assert config.network.bridge_disabled
    assert config.network.default_bridge.mtu == 1400


def test_deployment_home_dir_is_honoured_and_follows_the_manager_by_default() -> None:
    assert parse_daemon_config({"deployment": {"home_dir": "/d"}}).deployment.home_dir == "/d"
    moved = parse_daemon_config({"manager": {"home_dir": "/data/cm"}})
    assert moved.deployment.home_dir == "/data/cm"


def test_image_verifier_config_takes_both_of_kantos_forms() -> None:
    for value in ("configDir=/a,libexecDir=/b", {"configDir": "/a", "libexecDir": "/b"}):
        config = parse_daemon_config({"containers": {"image_verifier_config": value}})
        assert config.warnings == ()


def test_overrides_win_over_the_file_and_leave_it_unchanged() -> None:
    raw = json.loads(KANTO_TEST_FIXTURE)
    before = json.dumps(raw, sort_keys=True)
    merged = with_overrides(
        raw,
        {
            ("manager", "default_ctrs_stop_timeout"): "15s",
            ("network", "default_bridge", "disable"): True,
            ("update_agent", "enable"): True,
            ("log", "log_level"): "debug",
        },
    )
    assert json.dumps(raw, sort_keys=True) == before
    config = parse_daemon_config(merged)
    assert config.manager.default_ctrs_stop_timeout == 15.0
    assert config.network.bridge_disabled
    assert config.log.level is LogLevel.DEBUG
    assert config.update_agent.enable
    assert (
        parse_daemon_config(with_overrides({}, {("deployment", "mode"): "init"})).deployment.mode
        is DeploymentMode.INIT
    )


def test_an_override_under_a_non_object_section_is_still_reported() -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_daemon_config(with_overrides({"log": 3}, {("log", "log_level"): "INFO"}))
    assert caught.value.message == "section log must be a JSON object"
