"""Every validation message of docs/kanto-compatibility.md §3 and of the ocirt decisions, and its
order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pytest

from ocirt.config import (
    check_name,
    check_unique_name,
    fill_defaults,
    parse_create_with_config,
    parse_persisted,
    validate,
)
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
    Resources,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.errors import AlreadyExists, InvalidArgument, ValidationError
from ocirt.things.protocol import DittoError

IMAGE = "docker.io/library/nginx:1.25"


def definition(name: str = "web", image_ref: str = IMAGE, **config: object) -> ContainerDefinition:
    return ContainerDefinition(ContainerId("c0ffee"), name, image_ref, ContainerConfig(**config))  # type: ignore[arg-type]


def message_of(candidate: ContainerDefinition) -> str:
    with pytest.raises(ValidationError) as caught:
        validate(fill_defaults(candidate))
    assert caught.value.status == 400
    return caught.value.message


def ditto_message(config: Mapping[str, object], name: str | None = None) -> str:
    value: dict[str, object] = {"imageRef": IMAGE, "start": False, "config": config}
    if name is not None:
        value["name"] = name
    with pytest.raises(ValidationError) as caught:
        parse_create_with_config(value)
    return caught.value.message


def persisted_message(host_config: dict[str, object], **top: object) -> str:
    data: dict[str, object] = {
        "container_name": "web",
        "image": {"name": IMAGE},
        "host_config": host_config,
        **top,
    }
    with pytest.raises(ValidationError) as caught:
        parse_persisted(data, default_id="c0ffee")
    return caught.value.message


def test_a_default_definition_is_valid() -> None:
    validate(fill_defaults(definition()))


# 1. image


def test_image_must_be_set() -> None:
    assert message_of(definition(image_ref="")) == "the containers image configuration is invalid"


def test_image_missing_from_a_descriptor() -> None:
    with pytest.raises(ValidationError, match=r"^the containers image configuration is invalid$"):
        parse_persisted({"container_name": "x"}, default_id="c0ffee")


def test_create_with_config_requires_image_ref() -> None:
    with pytest.raises(ValidationError, match=r"^imageRef must be set$"):
        parse_create_with_config({"start": True, "config": {}})


# 2. name


@pytest.mark.parametrize("name", ["-web", ".web", "web server", "web/1", "wéb", "web\n"])
def test_name_format(name: str) -> None:
    assert message_of(definition(name=name)) == f"invalid container name format : {name}"


@pytest.mark.parametrize("name", ["web", "_web", "Web-1.2_x", "0"])
def test_name_format_accepts(name: str) -> None:
    validate(fill_defaults(definition(name=name)))
    check_name(name)


def test_name_from_create_with_config_is_validated() -> None:
    assert ditto_message({}, name="no way") == "invalid container name format : no way"


def test_rename_check() -> None:
    check_name("")  # an empty rename is a no-op in Kanto
    with pytest.raises(ValidationError, match=r"^invalid container name format : a b$"):
        check_name("a b")


# 3. mounts


@pytest.mark.parametrize(("source", "destination"), [("", "/data"), ("/srv", ""), ("", "")])
def test_mount_needs_source_and_destination(source: str, destination: str) -> None:
    mounts = (MountPoint(source, destination),)
    assert (
        message_of(definition(mount_points=mounts))
        == "source and destination must be set for a mount point"
    )


@pytest.mark.parametrize("source", ["data", "./data", "~/data", "../etc"])
def test_a_relative_mount_source_is_refused(source: str) -> None:
    # Kanto accepts it and the start fails (issue 13 item 6).
    mounts = (MountPoint(source, "/data"),)
    assert message_of(definition(mount_points=mounts)) == (
        f"the source of a mount point must be an absolute path on the host: {source}"
    )


@pytest.mark.parametrize("mode", ["rshard", "bind", "RPRIVATE ", "r-private"])
def test_unknown_propagation_is_an_error(mode: str) -> None:
    # Decision 4: Kanto silently falls back to rprivate.
    config = {"mountPoints": [{"source": "/a", "destination": "/b", "propagationMode": mode}]}
    assert ditto_message(config) == "propagation mode must be set to one of the supported modes"


def test_unknown_propagation_in_a_descriptor() -> None:
    mounts = [{"source": "/a", "destination": "/b", "propagation_mode": "weird"}]
    assert (
        persisted_message({}, mount_points=mounts)
        == "propagation mode must be set to one of the supported modes"
    )


# 5. privileged


PRIVILEGED_DEVICES = (
    "cannot create the container as privileged and with specified devices at the same time"
    " - choose one of the options"
)
PRIVILEGED_CAPABILITIES = (
    "cannot create the container as privileged and with extra capabilities at the same time"
    " - choose one of the options"
)


def test_privileged_with_devices() -> None:
    devices = (Device("/dev/ttyUSB0", "/dev/ttyUSB0"),)
    assert message_of(definition(privileged=True, devices=devices)) == PRIVILEGED_DEVICES
    config = {"privileged": True, "devices": [{"pathOnHost": "/dev/ttyUSB0"}]}
    assert ditto_message(config) == PRIVILEGED_DEVICES


def test_privileged_with_capabilities() -> None:
    candidate = definition(privileged=True, extra_capabilities=("CAP_NET_ADMIN",))
    assert message_of(candidate) == PRIVILEGED_CAPABILITIES
    host = {"privileged": True, "extra_capabilities": ["CAP_NET_ADMIN"]}
    assert persisted_message(host) == PRIVILEGED_CAPABILITIES


def test_privileged_with_present_but_empty_arrays_in_a_descriptor() -> None:
    # Kanto checks for non-nil slices: an empty array still conflicts.
    assert persisted_message({"privileged": True, "devices": []}) == PRIVILEGED_DEVICES
    assert (
        persisted_message({"privileged": True, "extra_capabilities": []}) == PRIVILEGED_CAPABILITIES
    )


def test_privileged_ditto_config_drops_capabilities_and_ignores_empty_devices() -> None:
    request = parse_create_with_config(
        {
            "imageRef": IMAGE,
            "config": {"privileged": True, "devices": [], "extraCapabilities": ["CAP_SYS_TIME"]},
        }
    )
    assert request.config.privileged
    assert request.config.extra_capabilities == ()


# 6. network


@pytest.mark.parametrize("mode", ["overlay", "none", "bridge0"])
def test_unsupported_network_mode(mode: str) -> None:
    assert ditto_message({"networkMode": mode}) == f"unsupported network mode {mode}"
    assert persisted_message({"network_mode": mode}) == f"unsupported network mode {mode}"


def test_port_mappings_in_host_mode() -> None:
    ports = (PortMapping(container_port=80, host_port=8080, host_port_end=8080),)
    candidate = definition(network_mode=NetworkMode.HOST, port_mappings=ports)
    assert message_of(candidate) == "cannot use port mappings when in host network mode"


@pytest.mark.parametrize("host", ["ctrhost:host_ip", "gw:host_ip_eth0", "a:b:host_ip"])
def test_host_ip_in_host_mode(host: str) -> None:
    candidate = definition(network_mode=NetworkMode.HOST, extra_hosts=("db:10.0.0.5", host))
    assert message_of(candidate) == (
        "cannot use the host_ip reserved key or any of its modifications when in host network mode"
    )


def test_host_ip_is_fine_in_bridge_mode_and_literal_hosts_in_host_mode() -> None:
    validate(fill_defaults(definition(extra_hosts=("ctrhost:host_ip",))))
    validate(fill_defaults(definition(network_mode=NetworkMode.HOST, extra_hosts=("db:10.0.0.5",))))


def test_a_host_name_the_kernel_cannot_set_is_refused_at_create() -> None:
    too_long = "h" * 65
    assert message_of(definition(host_name=too_long)) == (
        f"host name {too_long} is longer than 64 characters"
    )
    assert message_of(definition(domain_name=too_long)) == (
        f"domain name {too_long} is longer than 64 characters"
    )
    # Host mode uses the host's own name; the given one is never set.
    validate(fill_defaults(definition(network_mode=NetworkMode.HOST, host_name=too_long)))
    validate(fill_defaults(definition(host_name="h" * 64)))


def test_unknown_port_protocol() -> None:
    # ocirt addition: Kanto passes the text on and fails only when the container starts.
    config = {"portMappings": [{"proto": "sctp", "containerPort": 80, "hostPort": 80}]}
    assert ditto_message(config) == "unsupported port mapping protocol sctp"


# 7. devices


def test_device_needs_both_paths() -> None:
    devices = (Device("", "/dev/modem"),)
    assert message_of(definition(devices=devices)) == (
        "both path on the host and in the container must be specified for a device mapping"
    )


def test_device_cgroup_permissions_must_be_set() -> None:
    # Reachable only before defaults are filled: Kanto fills "rwm" first.
    candidate = definition(devices=(Device("/dev/ttyS0", "/dev/serial", ""),))
    with pytest.raises(
        ValidationError,
        match=r"^the cgroup permissions for device mapping /dev/ttyS0:/dev/serial"
        r" are not provided$",
    ):
        validate(candidate)


# 8. log


def test_unsupported_log_driver() -> None:
    assert ditto_message({"log": {"type": "syslog"}}) == "unsupported log driver configuration"


def test_max_log_files() -> None:
    assert message_of(definition(log=LogConfig(max_files=-1))) == "max log files cannot be < 1"
    assert ditto_message({"log": {"maxFiles": -3}}) == "max log files cannot be < 1"


def test_max_log_size_must_be_set() -> None:
    with pytest.raises(ValidationError, match=r"^max logs size must be set$"):
        validate(definition(log=LogConfig(max_size="")))


@pytest.mark.parametrize("size", ["10MB", "ten", "1024", "-1M"])
def test_max_log_size_format(size: str) -> None:
    candidate = definition(log=LogConfig(max_size=size))
    assert message_of(candidate) == f"invalid format of max logs size - {size}"


def test_unsupported_log_mode() -> None:
    assert ditto_message({"log": {"mode": "async"}}) == "unsupported log mode configuration"


def test_max_buffer_size_must_be_set() -> None:
    with pytest.raises(ValidationError, match=r"^max buffer size must be set$"):
        validate(definition(log=LogConfig(mode=LogMode.NON_BLOCKING, max_buffer_size="")))


def test_max_buffer_size_format() -> None:
    candidate = definition(log=LogConfig(mode=LogMode.NON_BLOCKING, max_buffer_size="lots"))
    assert message_of(candidate) == "invalid format of max buffer size - lots"


def test_none_driver_skips_file_checks() -> None:
    validate(fill_defaults(definition(log=LogConfig(driver=LogDriver.NONE, max_size="junk"))))


# 9. restart policy


@pytest.mark.parametrize("policy_type", ["", "sometimes", "on_failure_please"])
def test_unsupported_restart_policy_type(policy_type: str) -> None:
    config = {"restartPolicy": {"type": policy_type}}
    assert ditto_message(config) == f"unsupported restart policy type {policy_type}"


def test_restart_policy_given_without_type() -> None:
    # An empty type inside a given object fails: Kanto only defaults a missing policy.
    assert ditto_message({"restartPolicy": {"maxRetryCount": 0}}) == (
        "unsupported restart policy type "
    )
    assert persisted_message({"restart_policy": {}}) == "unsupported restart policy type "


def test_on_failure_negative_retry_count() -> None:
    policy = RestartPolicy(RestartPolicyType.ON_FAILURE, max_retry_count=-1)
    assert (
        message_of(definition(restart_policy=policy))
        == "restart policy max retry count cannot be negative"
    )


def test_on_failure_negative_retry_timeout() -> None:
    config = {"restartPolicy": {"type": "ON_FAILURE", "retryTimeout": -5}}
    assert ditto_message(config) == "restart policy retry timeout cannot be negative"


@pytest.mark.parametrize(
    ("policy_type", "shown"),
    [("ALWAYS", "always"), ("UNLESS_STOPPED", "unless-stopped"), ("no", "no")],
)
def test_retry_count_only_for_on_failure(policy_type: str, shown: str) -> None:
    config = {"restartPolicy": {"type": policy_type, "maxRetryCount": 3}}
    assert ditto_message(config) == f"cannot use max retry count when the restart policy is {shown}"


# 10. resources


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (Resources(memory="lots"), "invalid format of memory - lots"),
        (Resources(memory="1024"), "invalid format of memory - 1024"),
        (
            Resources(memory="64M", memory_reservation="half"),
            "invalid format of memory reservation - half",
        ),
        (Resources(memory="64M", memory_swap="x2"), "invalid format of swap memory - x2"),
        (Resources(memory="2M"), "minimum memory allowed is 3M"),
        (Resources(memory="3071K"), "minimum memory allowed is 3M"),
        (Resources(memory="100B"), "minimum memory allowed is 3M"),
        (Resources(memory_swap="1G"), "swap memory - 1G, memory must be set as well"),
        (
            Resources(memory="512M", memory_swap="256M"),
            "swap memory - 256M is less than memory - 512M",
        ),
        (
            Resources(memory="100M", memory_reservation="200M"),
            "reservation memory - 200M must be lower than memory - 100M",
        ),
    ],
)
def test_resources(resources: Resources, message: str) -> None:
    assert message_of(definition(resources=resources)) == message


@pytest.mark.parametrize(
    "resources",
    [
        Resources(memory="3M"),
        Resources(memory="3072K"),
        Resources(memory="100M", memory_reservation="100M"),  # equal is allowed
        Resources(memory="100M", memory_swap="-1"),
        Resources(memory_swap="-1"),
        Resources(memory_reservation="50M"),  # no memory: nothing to compare with
        Resources(memory="0.5G", memory_swap="512M"),
    ],
)
def test_resources_accepted(resources: Resources) -> None:
    validate(fill_defaults(definition(resources=resources)))


# 11. env


@pytest.mark.parametrize("variable", ["1ABC=x", "A B=1", "=x", "", "A-B=1", "A\n=1"])
def test_env(variable: str) -> None:
    candidate = definition(env=("OK=1", variable))
    assert message_of(candidate) == (
        f"invalid environmental variable declaration provided : {variable}"
    )


@pytest.mark.parametrize("variable", ["A", "_a=1", "A=", "A=b=c", "PATH=/bin:/usr/bin"])
def test_env_accepted(variable: str) -> None:
    validate(fill_defaults(definition(env=(variable,))))


# First error wins, in Kanto's order, including errors found while parsing.


def test_order_name_before_network_mode() -> None:
    assert ditto_message({"networkMode": "overlay"}, name="bad name") == (
        "invalid container name format : bad name"
    )


def test_order_follows_mounts_one_by_one() -> None:
    mounts = [
        {"source": "/a", "destination": "/b", "propagationMode": "sideways"},
        {"source": "", "destination": "/c"},
    ]
    assert ditto_message({"mountPoints": mounts}) == (
        "propagation mode must be set to one of the supported modes"
    )
    assert ditto_message({"mountPoints": list(reversed(mounts))}) == (
        "source and destination must be set for a mount point"
    )


def test_order_restart_before_resources_before_env() -> None:
    config = {
        "env": ["1BAD"],
        "resources": {"memory": "1M"},
        "restartPolicy": {"type": "often"},
    }
    assert ditto_message(config) == "unsupported restart policy type often"
    del config["restartPolicy"]
    assert ditto_message(config) == "minimum memory allowed is 3M"


def test_order_log_driver_before_max_files() -> None:
    assert ditto_message({"log": {"type": "journald", "maxFiles": -1}}) == (
        "unsupported log driver configuration"
    )


def test_order_network_before_devices_before_log() -> None:
    config = {
        "networkMode": "host",
        "portMappings": [{"containerPort": 1, "hostPort": 1}],
        "devices": [{"pathInContainer": "/dev/x"}],
        "log": {"maxFiles": -1},
    }
    assert ditto_message(config) == "cannot use port mappings when in host network mode"
    del config["portMappings"]
    assert ditto_message(config) == (
        "both path on the host and in the container must be specified for a device mapping"
    )


# Decision 8: unique names.


def test_unique_name() -> None:
    check_unique_name("web", ["db", "cache"])
    with pytest.raises(AlreadyExists, match=r"^container with name = web already exists$"):
        check_unique_name("web", iter(["db", "web"]))


def test_validation_errors_are_invalid_arguments() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(fill_defaults(definition(name="?")))
    assert DittoError.from_exception(caught.value).to_value() == {
        "error": "messages:parameter.invalid",
        "status": 400,
        "message": "invalid container name format : ?",
    }


def test_validate_does_not_change_a_valid_definition() -> None:
    candidate = fill_defaults(definition(env=("A=1",)))
    validate(candidate)
    assert candidate == fill_defaults(replace(candidate))
