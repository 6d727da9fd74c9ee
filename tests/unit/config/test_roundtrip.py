"""Round trips over many generated configs: parse(serialise(x)) == x for both forms."""

from __future__ import annotations

import json
import random
from typing import TypeVar

import pytest

from ocirt.config import (
    fill_defaults,
    new_definition,
    parse_container_config,
    parse_create_with_config,
    parse_persisted,
    to_ditto_config,
    to_persisted,
    validate,
)
from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
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

CASES = 300
T = TypeVar("T")


def _some(rng: random.Random, items: list[T], most: int = 3) -> tuple[T, ...]:
    return tuple(rng.choice(items) for _ in range(rng.randint(0, most)))


def random_definition(rng: random.Random) -> ContainerDefinition:
    mode = rng.choice(list(NetworkMode))
    devices = tuple(
        Device(rng.choice(["/dev/ttyUSB0", "/dev/i2c-1", "/dev/gpiochip0"]), path, perms)
        for path, perms in zip(
            _some(rng, ["", "/dev/a", "/dev/modem"]),
            _some(rng, ["", "r", "rw", "rwm", "m"], most=9),
            strict=False,
        )
    )
    capabilities = _some(rng, ["CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_NET_RAW"])
    privileged = not devices and not capabilities and rng.random() < 0.5
    hosts = ["db:10.0.0.5", "gw:192.168.7.1", "me:container_other-host"]
    if mode is NetworkMode.BRIDGE:
        hosts += ["ctrhost:host_ip", "eth:host_ip_eth0"]
    ports: tuple[PortMapping, ...] = ()
    if mode is NetworkMode.BRIDGE:
        ports = tuple(
            PortMapping(
                container_port=rng.randint(0, 65535),
                host_port=(host := rng.randint(1, 60000)),
                host_port_end=rng.choice([0, host, host + rng.randint(0, 5000)]),
                proto=rng.choice(list(PortProtocol)),
                host_ip=rng.choice(["", "127.0.0.1", "0.0.0.0", "::1"]),
            )
            for _ in range(rng.randint(0, 3))
        )
    policy_type = rng.choice(list(RestartPolicyType))
    on_failure = policy_type is RestartPolicyType.ON_FAILURE
    driver = rng.choice(list(LogDriver))
    log_mode = rng.choice(list(LogMode))
    memory = rng.choice(["", "3M", "64m", "1.5G", "100000K", "4194304B"])
    resources = Resources(
        memory=memory,
        memory_reservation=rng.choice(["", "1M", "2.5m"]),
        memory_swap=rng.choice(["", "-1", "4G", "2g"]) if memory else rng.choice(["", "-1"]),
    )
    config = ContainerConfig(
        domain_name=rng.choice(["", "example.org", "edge.local"]),
        host_name=rng.choice(["", "box", "sensor-7"]),
        env=_some(rng, ["A=1", "PATH=/bin:/usr/bin", "EMPTY=", "FLAG", "_X=a=b"]),
        cmd=_some(rng, ["/bin/sh", "-c", "echo hi", "", "ünïcode"]),
        privileged=privileged,
        extra_hosts=_some(rng, hosts),
        extra_capabilities=() if privileged else capabilities,
        network_mode=mode,
        open_stdin=rng.random() < 0.5,
        tty=rng.random() < 0.5,
        mount_points=tuple(
            MountPoint(src, dst, rng.choice(list(Propagation)))
            for src, dst in zip(
                _some(rng, ["/data", "/etc/app", "/var/run/x.sock"]),
                _some(rng, ["/mnt", "/etc/app", "/run/x.sock"], most=9),
                strict=False,
            )
        ),
        decryption=Decryption(
            keys=_some(rng, ["/keys/a.pem", "/keys/b.pem:pass"]),
            recipients=_some(rng, ["pkcs7:/certs/a.crt", "jwe:/certs/b.pem"]),
        ),
        devices=devices,
        restart_policy=RestartPolicy(
            type=policy_type,
            max_retry_count=rng.randint(0, 10) if on_failure else 0,
            retry_timeout=rng.randint(0, 600) if on_failure else rng.randint(-5, 600),
        ),
        port_mappings=ports,
        log=LogConfig(
            driver=driver,
            max_files=rng.randint(0, 10),
            max_size=rng.choice(["", "1M", "100m", "0.5G", "512K", "1000B"]),
            root_dir=rng.choice(["", "/var/log/ctr"]),
            mode=log_mode,
            max_buffer_size=rng.choice(["", "1M", "64k"]),
        ),
        resources=resources,
    )
    name = rng.choice(["", "web", "db_1", "a.b-c"])
    definition = ContainerDefinition(
        ContainerId(f"id-{rng.getrandbits(64):016x}"), name, "registry.local/app:1", config
    )
    return fill_defaults(definition)


def generated() -> list[ContainerDefinition]:
    rng = random.Random(20240501)
    definitions = [random_definition(rng) for _ in range(CASES)]
    for definition in definitions:
        validate(definition)  # the generator only builds valid definitions
    return definitions


DEFINITIONS = generated()


def through_json(value: object) -> object:
    return json.loads(json.dumps(value))


@pytest.mark.parametrize("index", range(CASES))
def test_ditto_round_trip(index: int) -> None:
    definition = DEFINITIONS[index]
    assert (
        parse_container_config(through_json(to_ditto_config(definition.config)))
        == definition.config
    )
    request = parse_create_with_config(
        through_json(
            {
                "imageRef": definition.image_ref,
                "name": definition.name,
                "start": True,
                "config": to_ditto_config(definition.config),
            }
        )
    )
    assert new_definition(definition.id, request) == definition


@pytest.mark.parametrize("index", range(CASES))
def test_persisted_round_trip(index: int) -> None:
    definition = DEFINITIONS[index]
    extras = {"state": {"status": index % 8, "pid": -1}, "restart_count": index}
    loaded = parse_persisted(through_json(to_persisted(definition, extras)))
    assert loaded.definition == definition
    assert dict(loaded.extras) == extras


def test_generator_covers_the_interesting_cases() -> None:
    # Guards the round trips against a generator that silently stopped varying.
    configs = [definition.config for definition in DEFINITIONS]
    assert any(config.privileged for config in configs)
    assert any(config.devices for config in configs)
    assert any(config.port_mappings for config in configs)
    assert any(config.network_mode is NetworkMode.HOST for config in configs)
    assert any(config.log.driver is LogDriver.NONE for config in configs)
    assert any(config.log.mode is LogMode.NON_BLOCKING for config in configs)
    assert any(config.resources.memory_swap == "-1" for config in configs)
    assert any(config.restart_policy.retry_timeout < 0 for config in configs)
    assert {mount.propagation for c in configs for mount in c.mount_points} == set(Propagation)
