"""`ocirt daemon`'s flags: Kanto's names, pflag's value forms, and flags over the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocirt.cli import daemon_cmd
from ocirt.cli.main import command_parser, main
from ocirt.daemon.config import DeploymentMode, LogLevel
from ocirt.daemon.main import load_config_file

# Every flag of Kanto's daemon (containerm/daemon/daemon_command.go setupCommandFlags),
# except cfg-file, which is --config's other name.
KANTO_DAEMON_FLAGS = [
    "log-level",
    "log-file",
    "log-file-size",
    "log-file-count",
    "log-file-max-age",
    "log-syslog",
    "deployment-enable",
    "deployment-mode",
    "deployment-home-dir",
    "deployment-ctr-dir",
    "cm-home-dir",
    "cm-exec-root-dir",
    "cm-cc-sid",
    "cm-net-sid",
    "cm-deflt-ctrs-stop-timeout",
    "ccl-default-ns",
    "ccl-ap",
    "ccl-insecure-registries",
    "ccl-exec-root-dir",
    "ccl-home-dir",
    "ccl-image-dec-keys",
    "ccl-image-dec-recipients",
    "ccl-runc-runtime",
    "ccl-image-expiry",
    "ccl-image-expiry-disable",
    "ccl-lease-id",
    "ccl-image-verifier-type",
    "ccl-image-verifier-config",
    "net-type",
    "net-home-dir",
    "net-exec-root-dir",
    "net-tbr-disable",
    "net-br-name",
    "net-br-ip4",
    "net-br-fcidr4",
    "net-br-gwip4",
    "net-br-enable-ip6",
    "net-br-mtu",
    "net-br-icc",
    "net-br-ipt",
    "net-br-ipfw",
    "net-br-ipmasq",
    "net-br-ulp",
    "grpc-serv-netp",
    "grpc-serv-ap",
    "things-enable",
    "things-home-dir",
    "things-features",
    "ua-enable",
    "ua-domain",
    "ua-system-containers",
    "ua-verbose-inventory-report",
    "conn-broker-url",
    "conn-keep-alive",
    "conn-disconnect-timeout",
    "conn-client-username",
    "conn-client-password",
    "conn-connect-timeout",
    "conn-ack-timeout",
    "conn-sub-timeout",
    "conn-unsub-timeout",
    "conn-root-ca",
    "conn-client-cert",
    "conn-client-key",
]


def parse(*argv: str) -> Any:
    return command_parser("daemon").parse_args(list(argv))


def test_every_kanto_flag_is_there() -> None:
    assert sorted(flag for flag, *_ in daemon_cmd.KANTO_FLAGS) == sorted(KANTO_DAEMON_FLAGS)
    assert parse("--cfg-file", "/c.json").config == "/c.json"


def test_no_flags_no_overrides() -> None:
    assert daemon_cmd.overrides(parse()) == {}


def test_values_are_read_as_kantos_flag_library_reads_them() -> None:
    args = parse(
        "--log-level", "DEBUG",
        "--net-br-mtu", "1400",
        "--things-enable=false",
        "--net-tbr-disable",
        "--log-syslog", "0",
        "--ccl-insecure-registries", "a:5000,b",
        "--ccl-insecure-registries=c",
        "--things-features", "ContainerFactory",
        "--cm-deflt-ctrs-stop-timeout", "15",
        "--conn-keep-alive", "5s",
    )  # fmt: skip
    assert daemon_cmd.overrides(args) == {
        ("log", "log_level"): "DEBUG",
        ("network", "default_bridge", "mtu"): 1400,
        ("things", "enable"): False,
        ("network", "default_bridge", "disable"): True,
        ("log", "syslog"): False,
        ("containers", "insecure_registries"): ["a:5000", "b", "c"],
        ("things", "features"): ["ContainerFactory"],
        ("manager", "default_ctrs_stop_timeout"): 15,
        ("connection", "keep_alive"): "5s",
    }
    assert (
        daemon_cmd.overrides(parse("--ccl-insecure-registries="))[
            ("containers", "insecure_registries")
        ]
        == []
    )


def test_a_bad_boolean_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse("--things-enable=maybe")
    assert caught.value.code == 2
    assert "invalid boolean value: 'maybe'" in capsys.readouterr().err


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "log": {"log_level": "INFO"},
                "manager": {"home_dir": "/data/cm", "default_ctrs_stop_timeout": "30s"},
                "deployment": {"mode": "update"},
                "network": {"default_bridge": {"name": "br-file"}},
            }
        )
    )
    args = parse(
        "--config", str(path), "--log-level", "TRACE", "--cm-deflt-ctrs-stop-timeout", "1m",
        "--deployment-mode", "init", "--net-br-name", "br-flag", "--deployment-home-dir", "/d",
    )  # fmt: skip
    config = load_config_file(args.config, daemon_cmd.overrides(args))
    assert config.log.level is LogLevel.TRACE
    assert config.manager.home_dir == "/data/cm"  # from the file, no flag
    assert config.manager.default_ctrs_stop_timeout == 60.0
    assert config.deployment.mode is DeploymentMode.INIT
    assert config.deployment.home_dir == "/d"
    assert config.network.default_bridge.name == "br-flag"


def test_a_bad_flag_value_names_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocirt.daemon import main as daemon_main

    monkeypatch.setattr(daemon_main, "defer_unused_modules", lambda: None)
    assert main(["daemon", "--config", "/nonexistent/none.json"]) == 1
    capsys.readouterr()
    path = tmp_path / "config.json"
    path.write_text("{}")
    assert main(["daemon", "--config", str(path), "--deployment-mode", "often"]) == 1
    assert capsys.readouterr().err == (
        f"Error: {path}: deployment.mode must be init or update, not 'often'\n"
    )
