from __future__ import annotations

from typing import Any

import pytest

from ocirt.config.model import (
    Device,
    MountPoint,
    NetworkMode,
    PortMapping,
    PortProtocol,
    Propagation,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.updateagent.desired import IdentificationFailed, parse_desired_state


def state(*components: dict[str, Any], baselines: Any = None, **domain: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "domains": [{"id": "containers", "components": list(components), **domain}]
    }
    if baselines is not None:
        body["baselines"] = baselines
    return body


def component(cid: str, version: str = "1.0", **config: Any) -> dict[str, Any]:
    pairs = []
    for key, value in config.items():
        for item in value if isinstance(value, list) else [value]:
            pairs.append({"key": key, "value": item})
    return {"id": cid, "version": version, "config": pairs}


@pytest.mark.parametrize("domains", [[], [{"id": "containers"}, {"id": "containers"}]])
def test_one_domain_expected(domains: list[Any]) -> None:
    with pytest.raises(IdentificationFailed) as info:
        parse_desired_state({"domains": domains}, "containers")
    assert info.value.message == (
        f"one domain expected in desired state specification, but got {len(domains)}"
    )


def test_domain_id_mismatch() -> None:
    with pytest.raises(IdentificationFailed) as info:
        parse_desired_state({"domains": [{"id": "files"}]}, "containers")
    assert info.value.message == "domain id mismatch - expecting containers, received files"


def test_image_defaults_to_id_and_version() -> None:
    desired = parse_desired_state(state(component("app", "2.1")), "containers")
    (app,) = desired.containers
    assert (app.name, app.version, app.image_ref) == ("app", "2.1", "app:2.1")
    assert app.config.host_name == "app-host"  # Kanto's defaults are filled in


def test_config_keys() -> None:
    desired = parse_desired_state(
        state(
            component(
                "app",
                image="reg/app:3",
                env=["A=1", "B=2"],
                cmd=["sh", "-c", "sleep 1"],
                device=["/dev/null:/dev/x:rw", "bad"],
                port=["1.2.3.4:80-81:8080/udp", "90:9090", "nonsense"],
                mount=["/src:/dst:rshared", "/a:/b", "/x:/y:weird"],
                host=["h:1.2.3.4"],
                privileged="false",
                terminal="1",
                interactive="maybe",
                logMaxFiles="4",
                memory="10M",
                colour="blue",
            )
        ),
        "containers",
    )
    app = desired.containers[0]
    config = app.config
    assert app.image_ref == "reg/app:3"
    assert config.env == ("A=1", "B=2")
    assert config.cmd == ("sh", "-c", "sleep 1")
    assert config.devices == (Device("/dev/null", "/dev/x", "rw"),)
    assert config.port_mappings == (
        PortMapping(8080, 80, 81, PortProtocol.UDP, "1.2.3.4"),
        PortMapping(9090, 90, 90, PortProtocol.TCP, "0.0.0.0"),
    )
    assert config.mount_points == (
        MountPoint("/src", "/dst", Propagation.RSHARED),
        MountPoint("/a", "/b", Propagation.RPRIVATE),
    )
    assert config.extra_hosts == ("h:1.2.3.4",)
    assert (config.privileged, config.tty, config.open_stdin) == (False, True, False)
    assert config.network_mode is NetworkMode.BRIDGE
    assert config.log.max_files == 4
    assert config.resources.memory == "10M"
    assert config.resources.memory_swap == "20M"  # FillMemorySwap
    warnings = " ".join(desired.warnings)
    for skipped in ("'bad'", "'nonsense'", "'/x:/y:weird'", "interactive = maybe"):
        assert skipped in warnings


def test_host_network() -> None:
    desired = parse_desired_state(state(component("app", network="host")), "containers")
    assert desired.containers[0].config.network_mode is NetworkMode.HOST


def test_restart_retries_and_timeout_count_for_on_failure_only() -> None:
    desired = parse_desired_state(
        state(
            component("a", restartPolicy="on-failure", restartMaxRetries="3", restartTimeout="7"),
            component("b", restartPolicy="always", restartMaxRetries="3", restartTimeout="7"),
            component("c"),
        ),
        "containers",
    )
    a, b, c = (x.config.restart_policy for x in desired.containers)
    assert a == RestartPolicy(RestartPolicyType.ON_FAILURE, 3, 7)
    assert b == RestartPolicy(RestartPolicyType.ALWAYS, 0, 0)
    assert c == RestartPolicy()


@pytest.mark.parametrize(
    ("config", "text"),
    [
        ({"network": "overlay"}, "unsupported network mode overlay"),
        ({"restartPolicy": "sometimes"}, "unsupported restart policy type sometimes"),
        ({"image": ""}, "the containers image configuration is invalid"),
        ({"env": "1BAD=x"}, "invalid environmental variable declaration provided : 1BAD=x"),
    ],
)
def test_invalid_config_is_kantos_text(config: dict[str, str], text: str) -> None:
    with pytest.raises(IdentificationFailed) as info:
        parse_desired_state(state(component("app", **config)), "containers")
    assert info.value.message == (
        "cannot convert desired state components to container configurations: "
        f"invalid configuration for container app: {text}"
    )


def test_baselines() -> None:
    desired = parse_desired_state(
        state(
            component("a"),
            component("b"),
            component("c"),
            baselines=[
                {"title": "first", "components": ["containers:b", "other:x", "containers:a"]}
            ],
        ),
        "containers",
    )
    assert desired.baselines == (("first", ("b", "a")), ("containers:c", ("c",)))


@pytest.mark.parametrize(
    ("baselines", "component_name"),
    [
        ([{"title": "t", "components": ["containers:zzz"]}], "containers:zzz"),
        (
            [
                {"title": "s", "components": ["containers:a"]},
                {"title": "t", "components": ["containers:a"]},
            ],
            "containers:a",
        ),
    ],
)
def test_baseline_naming_an_unknown_or_claimed_container(
    baselines: list[Any], component_name: str
) -> None:
    with pytest.raises(IdentificationFailed) as info:
        parse_desired_state(state(component("a"), baselines=baselines), "containers")
    assert info.value.message == (
        "cannot process desired state baselines with containers: problem with baseline t: "
        f"cannot find container component {component_name}"
    )


def test_system_containers_from_the_domain_config() -> None:
    desired = parse_desired_state(
        state(config=[{"key": "systemContainers", "value": "a, b ,c"}]), "containers"
    )
    assert desired.system_containers == ("a", "b", "c")
    assert parse_desired_state(state(), "containers").system_containers is None
