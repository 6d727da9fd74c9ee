"""Kanto's FillDefaults and FillMemorySwap (docs/kanto-compatibility.md §3)."""

from __future__ import annotations

import pytest

from ocirt.config import fill_defaults
from ocirt.config.defaults import fill_config
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    ContainerId,
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
    RestartPolicyType,
)

ID = ContainerId("0b1e7c6e-9d7f-4c55-a4a5-3b1f8f0d2c11")


def filled(name: str = "", **config: object) -> ContainerDefinition:
    return fill_defaults(ContainerDefinition(ID, name, "img:1", ContainerConfig(**config)))  # type: ignore[arg-type]


def test_name_defaults_to_id_and_names_derive_from_it() -> None:
    definition = filled()
    assert definition.name == ID
    assert definition.config.domain_name == f"{ID}-domain"
    assert definition.config.host_name == f"{ID}-host"


def test_given_names_are_kept() -> None:
    definition = filled("web", domain_name="example.org", host_name="box")
    assert (definition.name, definition.config.domain_name, definition.config.host_name) == (
        "web",
        "example.org",
        "box",
    )
    named = filled("web")
    assert (named.config.domain_name, named.config.host_name) == ("web-domain", "web-host")


def test_the_rest_of_the_defaults() -> None:
    config = filled("web").config
    assert config.network_mode is NetworkMode.BRIDGE
    assert config.restart_policy.type is RestartPolicyType.UNLESS_STOPPED
    assert (config.restart_policy.max_retry_count, config.restart_policy.retry_timeout) == (0, 0)
    assert config.log == LogConfig(
        driver=LogDriver.JSON_FILE,
        max_files=2,
        max_size="100M",
        root_dir="",
        mode=LogMode.BLOCKING,
        max_buffer_size="",
    )
    assert (config.open_stdin, config.tty, config.privileged) == (False, False, False)
    assert config.resources == Resources()


def test_json_file_log_fills_only_what_is_missing() -> None:
    log = filled(log=LogConfig(max_files=0, max_size="")).config.log
    assert (log.max_files, log.max_size) == (2, "100M")
    log = filled(log=LogConfig(max_files=7, max_size="5M", root_dir="/logs")).config.log
    assert (log.max_files, log.max_size, log.root_dir) == (7, "5M", "/logs")


def test_none_driver_discards_file_options() -> None:
    log = filled(log=LogConfig(driver=LogDriver.NONE, max_files=4, max_size="1M")).config.log
    assert (log.max_files, log.max_size) == (0, "")


def test_non_blocking_mode_gets_a_buffer() -> None:
    log = filled(log=LogConfig(mode=LogMode.NON_BLOCKING)).config.log
    assert log.max_buffer_size == "1M"
    log = filled(log=LogConfig(mode=LogMode.NON_BLOCKING, max_buffer_size="64K")).config.log
    assert log.max_buffer_size == "64K"


def test_blocking_mode_discards_the_buffer() -> None:
    log = filled(log=LogConfig(mode=LogMode.BLOCKING, max_buffer_size="4M")).config.log
    assert log.max_buffer_size == ""


def test_devices() -> None:
    devices = filled(devices=(Device("/dev/ttyUSB0", "", ""), Device("/dev/a", "/dev/b", "r")))
    assert devices.config.devices == (
        Device("/dev/ttyUSB0", "/dev/ttyUSB0", "rwm"),
        Device("/dev/a", "/dev/b", "r"),
    )


def test_port_mappings() -> None:
    ports = (
        PortMapping(container_port=80, host_port=8080, host_port_end=0, host_ip=""),
        PortMapping(80, 9000, 9005, PortProtocol.UDP, "127.0.0.1"),
    )
    assert filled(port_mappings=ports).config.port_mappings == (
        PortMapping(80, 8080, 8080, PortProtocol.TCP, "0.0.0.0"),
        PortMapping(80, 9000, 9005, PortProtocol.UDP, "127.0.0.1"),
    )


def test_mount_propagation_default() -> None:
    mounts = filled(mount_points=(MountPoint("/a", "/b"),)).config.mount_points
    assert mounts[0].propagation is Propagation.RPRIVATE


@pytest.mark.parametrize(
    ("given", "swap"),
    [
        (Resources(memory="200M"), "400M"),
        (Resources(memory="1.5g"), "3g"),
        (Resources(memory="200M", memory_swap="1G"), "1G"),
        (Resources(memory="200M", memory_swap="-1"), "-1"),  # unlimited is kept
        (Resources(memory_reservation="10M"), ""),
        (Resources(memory="garbage"), ""),  # left for validation to report
    ],
)
def test_memory_swap(given: Resources, swap: str) -> None:
    assert filled(resources=given).config.resources.memory_swap == swap


def test_filling_is_idempotent() -> None:
    once = filled(
        log=LogConfig(mode=LogMode.NON_BLOCKING),
        resources=Resources(memory="64M"),
        devices=(Device("/dev/x", "", ""),),
        port_mappings=(PortMapping(1, 2, 0),),
    )
    assert fill_defaults(once) == once


def test_fill_config_without_a_name_leaves_the_names_open() -> None:
    config = fill_config(ContainerConfig())
    assert (config.domain_name, config.host_name) == ("", "")
    assert config.log.max_size == "100M"


def test_a_long_name_gets_host_and_domain_names_the_kernel_can_set() -> None:
    name = "n" * 60  # a valid name; Kanto's "<name>-host" would be 65 characters
    config = filled(name).config
    assert config.host_name == "n" * 58 + "-host"
    assert config.domain_name == "n" * 56 + "-domain"
    assert len(config.host_name) <= 63 and len(config.domain_name) <= 63
    assert fill_defaults(filled(name)).config == config  # idempotent


def test_a_cut_name_never_leaves_an_empty_label_or_a_trailing_hyphen() -> None:
    name = "a" * 57 + ".-b" + "c" * 10
    assert filled(name).config.host_name == "a" * 57 + "-host"


def test_a_name_that_fits_keeps_kanto_s_derived_names() -> None:
    name = "n" * 58
    assert filled(name).config.host_name == name + "-host"
    assert filled("n" * 56).config.domain_name == "n" * 56 + "-domain"


def test_kanto_s_over_long_default_stored_earlier_is_cut_on_refill() -> None:
    name = "n" * 60
    stored = ContainerDefinition(
        ID,
        name,
        "img:1",
        ContainerConfig(host_name=f"{name}-host", domain_name=f"{name}-domain"),
    )
    config = fill_defaults(stored).config
    assert (config.host_name, config.domain_name) == ("n" * 58 + "-host", "n" * 56 + "-domain")
