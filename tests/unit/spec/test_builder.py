"""build_spec by value: golden config.json files plus targeted rules.

The goldens under golden/ were produced by the builder and reviewed. After an intended
change, regenerate them with ``OCIRT_UPDATE_GOLDEN=1 pytest tests/unit/spec`` and review
the diff before committing.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ocirt.config.model import (
    ContainerConfig,
    ContainerDefinition,
    ContainerId,
    Device,
    MountPoint,
    NetworkMode,
    Propagation,
    Resources,
)
from ocirt.errors import InvalidArgument
from ocirt.spec.builder import build_spec
from ocirt.spec.capabilities import from_mask
from ocirt.spec.facts import (
    BundlePaths,
    HostDevice,
    HostFacts,
    ImageConfig,
    NetworkAttachment,
    UserIds,
)

# The bounding set seen on our machines (000001fffeffffff): everything up to
# CAP_CHECKPOINT_RESTORE but bit 24, CAP_SYS_RESOURCE. docs/runtime-notes.md §6 names
# CAP_SYS_RESOURCE there, but bit 32 is set in that mask; capsh --decode agrees.
HOST_MASK = 0x1FFFEFFFFFF

HOST = HostFacts(
    capabilities=from_mask(HOST_MASK),
    hard_rlimits={"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 96365},
    devices=(
        HostDevice("/dev/null", "c", 1, 3, 0o666, 0, 0),
        HostDevice("/dev/sda", "b", 8, 0, 0o660, 0, 6),
        HostDevice("/dev/ttyS0", "c", 4, 64, 0o620, 0, 5),
    ),
    hostname="devicehost",
)

NETNS = NetworkAttachment.netns("/var/run/netns/ocirt-0123456789ab")

PATHS = BundlePaths(
    rootfs="/var/lib/container-management/containers/c1/rootfs",
    hosts="/var/lib/container-management/containers/c1/hosts",
    resolv_conf="/var/lib/container-management/containers/c1/resolv.conf",
    hostname="/var/lib/container-management/containers/c1/hostname",
    cgroups_path="ocirt/c1",
)

SHELL_IMAGE = ImageConfig(cmd=("/bin/sh",), env=("PATH=/usr/bin:/bin",))


GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("OCIRT_UPDATE_GOLDEN") == "1"

ROOT = UserIds()
BASE = ContainerConfig(host_name="c1-host", domain_name="c1-domain")
NULL = HostDevice("/dev/null", "c", 1, 3, 0o666, 0, 0)
ZERO = HostDevice("/dev/zero", "c", 1, 5, 0o666, 0, 0)


def build(
    config: ContainerConfig = BASE,
    image: ImageConfig = SHELL_IMAGE,
    *,
    user: UserIds = ROOT,
    host: HostFacts = HOST,
    network: NetworkAttachment = NETNS,
    devices: dict[str, HostDevice] | None = None,
) -> dict[str, Any]:
    return build_spec(
        config,
        image=image,
        user=user,
        host=host,
        network=network,
        paths=PATHS,
        devices=devices,
    )


GOLDEN_CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "privileged": {"config": replace(BASE, privileged=True)},
    "devices": {
        "config": replace(
            BASE,
            devices=(
                Device("/dev/null", "/dev/mynull", "r"),
                Device("/dev/zero", "/dev/zero", "rwm"),
            ),
        ),
        "devices": {"/dev/null": NULL, "/dev/zero": ZERO},
    },
    "mounts": {
        "config": replace(
            BASE,
            mount_points=(
                *(MountPoint(f"/srv/{p.value}", f"/mnt/{p.value}", p) for p in Propagation),
                MountPoint("/srv/hosts", "/etc/hosts"),
            ),
        )
    },
    "mounts_slave": {
        "config": replace(
            BASE, mount_points=(MountPoint("/srv/a", "/data/a/b", Propagation.RSLAVE),)
        )
    },
    "memory": {
        "config": replace(BASE, resources=Resources(memory="100M", memory_reservation="50M"))
    },
    "memory_swap_unlimited": {
        "config": replace(BASE, resources=Resources(memory="3m", memory_swap="-1"))
    },
    "tty": {"config": replace(BASE, tty=True, open_stdin=True, env=("A=1", "TERM=vt100"))},
    "host_mode": {
        "config": replace(BASE, network_mode=NetworkMode.HOST),
        "network": NetworkAttachment.host(),
    },
    "entrypoint_cmd": {
        "image": ImageConfig(
            entrypoint=("/bin/echo", "ep"),
            cmd=("x",),
            env=("FOO=image", "BAR=b"),
            working_dir="/srv",
            stop_signal="SIGQUIT",
            exposed_ports=("8080/tcp", "53/udp"),
            labels=(("org.example.role", "test"),),
        ),
        "config": replace(BASE, cmd=("y",), env=("FOO=config", "BAR")),
        "user": UserIds(1000, 1000, (29, 44)),
    },
    "extra_capabilities": {
        "config": replace(BASE, extra_capabilities=("net_admin", "CAP_SYS_TIME", "CHOWN"))
    },
}


@pytest.mark.parametrize("name", sorted(GOLDEN_CASES))
def test_golden(name: str) -> None:
    case = GOLDEN_CASES[name]
    spec = build(
        case.get("config", BASE),
        case.get("image", SHELL_IMAGE),
        user=case.get("user", UserIds()),
        network=case.get("network", NETNS),
        devices=case.get("devices"),
    )
    text = json.dumps(spec, indent=2, sort_keys=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{name}: rerun with OCIRT_UPDATE_GOLDEN=1 and review"


def test_every_golden_file_has_a_case() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(GOLDEN_CASES)


def test_definition_and_config_give_the_same_spec() -> None:
    definition = ContainerDefinition(ContainerId("c1"), "c1", "busybox", BASE)
    assert build(definition) == build(BASE)  # type: ignore[arg-type]


def test_entrypoint_is_kept_and_config_cmd_replaces_image_cmd() -> None:
    image = ImageConfig(entrypoint=("/bin/echo", "ep"), cmd=("x",))
    assert build(replace(BASE, cmd=("y",)), image)["process"]["args"] == ["/bin/echo", "ep", "y"]
    assert build(BASE, image)["process"]["args"] == ["/bin/echo", "ep", "x"]
    assert build(replace(BASE, cmd=("ls", "-l")), ImageConfig())["process"]["args"] == [
        "ls",
        "-l",
    ]


def test_no_command_at_all_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="no command"):
        build(BASE, ImageConfig())


def test_env_overrides_by_name_keeping_position() -> None:
    image = ImageConfig(cmd=("sh",), env=("PATH=/img", "A=1", "B=2"))
    env = build(replace(BASE, env=("B=3", "C=4", "A")), image)["process"]["env"]
    assert env == ["PATH=/img", "HOSTNAME=c1-host", "B=3", "C=4"]


def test_default_path_only_when_the_image_has_none() -> None:
    env = build(BASE, ImageConfig(cmd=("sh",)))["process"]["env"]
    assert env[0] == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_term_only_with_tty() -> None:
    assert "TERM=xterm" not in build(BASE)["process"]["env"]
    assert "TERM=xterm" in build(replace(BASE, tty=True))["process"]["env"]
    assert build(replace(BASE, tty=True))["process"]["terminal"] is True


def test_extra_capability_outside_the_bounding_set_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="CAP_SYS_RESOURCE"):
        build(replace(BASE, extra_capabilities=("SYS_RESOURCE",)))


def test_unknown_capability_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown capability"):
        build(replace(BASE, extra_capabilities=("CAP_FLY",)))


def test_privileged_gets_exactly_the_host_bounding_set_and_drops_extras() -> None:
    spec = build(replace(BASE, privileged=True, extra_capabilities=("SYS_RESOURCE",)))
    process_caps = spec["process"]["capabilities"]
    assert set(process_caps) == {"bounding", "effective", "permitted"}
    for values in process_caps.values():
        assert values == list(HOST.capabilities)
    assert "CAP_SYS_RESOURCE" not in process_caps["bounding"]
    assert "maskedPaths" not in spec["linux"] and "readonlyPaths" not in spec["linux"]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert [d["path"] for d in spec["linux"]["devices"]] == [d.path for d in HOST.devices]
    sys_mounts = [m for m in spec["mounts"] if m["destination"].startswith("/sys")]
    assert sys_mounts and all("ro" not in m["options"] for m in sys_mounts)


def test_default_keeps_sys_read_only() -> None:
    sys_mounts = [m for m in build()["mounts"] if m["destination"].startswith("/sys")]
    assert all("ro" in m["options"] for m in sys_mounts)


def test_rlimits_are_clamped_to_the_host_hard_limit() -> None:
    low = replace(HOST, hard_rlimits={"RLIMIT_NOFILE": 512})
    assert build(host=low)["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512}
    ]
    unlimited = replace(HOST, hard_rlimits={"RLIMIT_NOFILE": -1})
    assert build(host=unlimited)["process"]["rlimits"][0]["hard"] == 1024


def test_device_permissions_become_the_allow_rule() -> None:
    for perms in ("r", "w", "m", "rw", "rm", "wm", "rwm", "mwr"):
        config = replace(BASE, devices=(Device("/dev/null", "/dev/x", perms),))
        rule = build(config, devices={"/dev/null": NULL})["linux"]["resources"]["devices"][-1]
        assert rule == {
            "allow": True,
            "type": "c",
            "major": 1,
            "minor": 3,
            "access": "".join(c for c in "rwm" if c in perms),
        }


@pytest.mark.parametrize("perms", ["", "x", "rwx", "rr"])
def test_bad_device_permissions_are_refused(perms: str) -> None:
    config = replace(BASE, devices=(Device("/dev/null", "/dev/x", perms),))
    with pytest.raises(InvalidArgument):
        build(config, devices={"/dev/null": NULL})


def test_device_without_facts_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="/dev/null"):
        build(replace(BASE, devices=(Device("/dev/null", "/dev/null"),)))


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        ((Propagation.RPRIVATE, Propagation.PRIVATE), None),
        ((Propagation.RSLAVE,), "slave"),
        ((Propagation.SLAVE,), "slave"),
        ((Propagation.RSHARED,), "shared"),
        ((Propagation.SHARED, Propagation.RSLAVE), "shared"),
        ((Propagation.RSLAVE, Propagation.RSHARED), "shared"),
    ],
)
def test_rootfs_propagation_follows_the_mounts(
    props: tuple[Propagation, ...], expected: str | None
) -> None:
    mounts = tuple(MountPoint(f"/s{i}", f"/d{i}", p) for i, p in enumerate(props))
    spec = build(replace(BASE, mount_points=mounts))
    assert spec["linux"].get("rootfsPropagation") == expected


def test_user_mount_replaces_default_and_network_file_at_same_destination() -> None:
    mounts = (MountPoint("/h/shm", "/dev/shm"), MountPoint("/h/resolv", "/etc/resolv.conf"))
    spec = build(replace(BASE, mount_points=mounts))
    by_dest = {}
    for m in spec["mounts"]:
        assert m["destination"] not in by_dest
        by_dest[m["destination"]] = m
    assert by_dest["/dev/shm"]["source"] == "/h/shm"
    assert by_dest["/etc/resolv.conf"]["source"] == "/h/resolv"
    assert by_dest["/etc/hosts"]["source"] == PATHS.hosts


def test_mounts_are_ordered_parents_first() -> None:
    mounts = (MountPoint("/a", "/data/x/y"), MountPoint("/b", "/data"))
    dests = [m["destination"] for m in build(replace(BASE, mount_points=mounts))["mounts"]]
    assert dests.index("/data") < dests.index("/data/x/y")


def test_memory_swap_is_twice_memory_when_unset() -> None:
    memory = build(replace(BASE, resources=Resources(memory="10M")))["linux"]["resources"]
    assert memory["memory"] == {"limit": 10 * 2**20, "swap": 20 * 2**20}
    explicit = replace(BASE, resources=Resources(memory="10M", memory_swap="15M"))
    assert build(explicit)["linux"]["resources"]["memory"]["swap"] == 15 * 2**20


def test_no_memory_section_without_limits() -> None:
    assert "memory" not in build()["linux"]["resources"]


def test_host_mode_joins_no_netns_and_uses_the_host_name() -> None:
    spec = build(replace(BASE, network_mode=NetworkMode.HOST), network=NetworkAttachment.host())
    types = [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert "network" not in types and "uts" in types
    assert spec["hostname"] == "devicehost"
    assert "HOSTNAME=devicehost" in spec["process"]["env"]


def test_bridge_mode_joins_the_given_netns() -> None:
    namespaces = build()["linux"]["namespaces"]
    assert {"type": "network", "path": NETNS.netns_path} in namespaces


def test_network_attachment_must_match_mode() -> None:
    with pytest.raises(InvalidArgument):
        build(network=NetworkAttachment.host())
    with pytest.raises(InvalidArgument):
        build(replace(BASE, network_mode=NetworkMode.HOST))


def test_empty_hostname_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="hostname"):
        build(replace(BASE, host_name=""))


def test_spec_is_json_serialisable_and_deterministic() -> None:
    config = GOLDEN_CASES["entrypoint_cmd"]["config"]
    image = GOLDEN_CASES["entrypoint_cmd"]["image"]
    assert json.dumps(build(config, image)) == json.dumps(build(config, image))
