"""The CLI's flag translation (pure parts): create value, filters, tables."""

from __future__ import annotations

import pytest

from ocirt.cli import create_cmd, list_cmd, update_cmd
from ocirt.cli.common import CliError, table
from ocirt.cli.main import command_parser
from ocirt.config.ditto import parse_create_with_config
from ocirt.config.model import NetworkMode, PortProtocol, Propagation


def parsed(*argv: str) -> object:
    return command_parser("create").parse_args(list(argv))


def test_create_flags_become_a_valid_ditto_value() -> None:
    args = parsed(
        "-n", "web", "--t", "--i", "--rp", "on-failure", "--rp-cnt", "3", "--rp-to", "5",
        "--devices", "/dev/null:/dev/n:r", "--ports", "127.0.0.1:8080-8081:80/udp",
        "--ports", "9000:90", "--network", "bridge", "--hosts", "db:10.0.0.2",
        "--mp", "/srv:/data:rshared", "--e", "A=1", "--cap-add", "NET_ADMIN",
        "--log-max-size", "10M", "-m", "64M", "img", "sh", "-c", "echo hi",
    )  # fmt: skip
    value = create_cmd.create_value(args)  # type: ignore[arg-type]
    assert value["imageRef"] == "img" and value["name"] == "web"
    request = parse_create_with_config(value)
    config = request.config
    assert config.cmd == ("sh", "-c", "echo hi")
    assert config.tty and config.open_stdin
    assert config.restart_policy.max_retry_count == 3
    assert config.restart_policy.retry_timeout == 5
    assert config.devices[0].cgroup_permissions == "r"
    first, second = config.port_mappings
    assert (first.host_ip, first.host_port, first.host_port_end, first.container_port) == (
        "127.0.0.1", 8080, 8081, 80,
    )  # fmt: skip
    assert first.proto is PortProtocol.UDP
    assert (second.host_port, second.host_port_end, second.proto) == (9000, 9000, PortProtocol.TCP)
    assert config.network_mode is NetworkMode.BRIDGE
    assert config.mount_points[0].propagation is Propagation.RSHARED
    assert config.extra_capabilities == ("NET_ADMIN",)
    assert config.log.max_size == "10M"
    assert config.resources.memory == "64M"


@pytest.mark.parametrize(
    ("flag", "text"),
    [("--ports", "80"), ("--ports", "a:b"), ("--devices", "/dev/x"), ("--mp", "/a")],
)
def test_bad_flag_values(flag: str, text: str) -> None:
    with pytest.raises(CliError):
        create_cmd.create_value(parsed(flag, text, "img"))  # type: ignore[arg-type]


def test_update_value() -> None:
    args = command_parser("update").parse_args(["--rp", "always", "--memory-swap", "-1", "c"])
    assert update_cmd.update_value(args) == {
        "restartPolicy": {"type": "always"},
        "resources": {"memorySwap": "-1"},
    }


def test_list_filters() -> None:
    c = {"imageRef": "img", "state": {"status": "EXITED", "exitCode": 3}}
    assert list_cmd.matches(c, list_cmd.parse_filters(["status=exited", "exitcode=3"]))
    assert not list_cmd.matches(c, list_cmd.parse_filters(["image=other"]))
    with pytest.raises(CliError):
        list_cmd.parse_filters(["name=x"])


def test_table_alignment() -> None:
    assert table(["ID", "NAME"], [["abc", "x"], ["a", "longer"]]) == (
        "ID   NAME\nabc  x\na    longer"
    )
