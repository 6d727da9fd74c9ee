"""Kanto's own config file and daemon flags on a real daemon: the file Kanto ships in its
tests starts ocirt unchanged (paths moved by Kanto's flags), `default_bridge.disable`
leaves host mode only, and `deployment.home_dir` holds the init marker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from service_harness import IMAGE, Cloud, Service, in_container

from tests.unit.daemon.test_config_kanto_files import KANTO_TEST_FIXTURE

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def start_with_file(service: Service, config_file: Path, *flags: str) -> None:
    """Start the daemon on `config_file`; the harness's own config (same dirs, bridge and
    broker) stays in place for its cleanup."""
    harness_config = service.config_path
    service.write_config()
    service.write_config = lambda: None  # type: ignore[method-assign]
    service.config_path = config_file
    try:
        service.start(*flags)
    finally:
        service.config_path = harness_config


def link_exists(name: str) -> bool:
    done = subprocess.run(["ip", "link", "show", name], capture_output=True, check=False)
    return done.returncode == 0


def test_kantos_test_fixture_starts_the_daemon_with_flags_over_it(
    service: Service, cloud: Cloud
) -> None:
    kanto = service.tmp / "kanto-config.json"
    kanto.write_text(KANTO_TEST_FIXTURE)
    log_file = service.tmp / "kanto.log"
    start_with_file(
        service,
        kanto,
        "--cm-home-dir", str(service.home),
        "--cm-exec-root-dir", str(service.exec_root),
        "--net-br-name", service.bridge,
        "--net-br-ip4", f"{service.gateway}/24",
        "--things-home-dir", str(service.home / "things"),
        "--deployment-ctr-dir", str(service.tmp / "deploy"),
        "--deployment-home-dir", str(service.tmp / "deployment"),
        "--conn-broker-url", f"tcp://127.0.0.1:{service.broker_port}",
        "--log-file", str(log_file),
        "--log-level", "DEBUG",
    )  # fmt: skip
    assert kanto.read_text() == KANTO_TEST_FIXTURE  # used as it is
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    info = json.loads(service.cli("sysinfo", "--json").stdout)
    assert (info["homeDir"], info["execRoot"], info["bridge"]) == (
        str(service.home),
        str(service.exec_root),
        service.bridge,
    )
    assert link_exists(service.bridge)
    done = service.cli("create", "-n", "web", "--e", "WHO=kanto", "--start", IMAGE, *SERVE)
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    assert in_container(service, cid, "sh", "-c", "echo $WHO").strip() == "kanto"
    log = log_file.read_text()
    assert log.count("not used, they configure containerd") == 1
    # The file's own directories now differ from the flags': said once each, not fatal.
    assert log.count("containers.home_dir (/var/lib/container-management) is not used") == 1
    assert "ocirt daemon ready" in log


def test_a_disabled_bridge_leaves_host_mode_only(service: Service, cloud: Cloud) -> None:
    service.extra_config = {
        "network": {"default_bridge": {"name": service.bridge, "disable": True}}
    }
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    assert not link_exists(service.bridge)

    refused = service.cli("create", "-n", "bridged", IMAGE, *SERVE)
    assert refused.returncode == 1
    assert refused.stderr == (
        "Error: network mode bridge is not available: the default bridge is disabled "
        "(network.default_bridge.disable); create the container with network mode host\n"
    )
    answer = cloud.call("createWithConfig", "ContainerFactory", {"imageRef": IMAGE})
    assert answer.body["status"] == 400
    assert answer.body["value"]["message"].startswith("network mode bridge is not available")

    done = service.cli("create", "-n", "hosted", "--network", "host", "--start", IMAGE, *SERVE)
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    # Host mode: the container sees the host's interfaces, the loopback among them.
    host_links = set(Path("/sys/class/net").iterdir())
    seen = in_container(service, cid, "ls", "/sys/class/net").split()
    assert set(seen) == {p.name for p in host_links}
    listed = json.loads(service.cli("list", "--json").stdout)
    assert [c["name"] for c in listed] == ["hosted"]


def test_the_init_marker_lives_in_deployment_home_dir(service: Service) -> None:
    deploy = service.tmp / "deploy"
    deploy.mkdir()
    descriptor = {"container_name": "once", "image": {"name": IMAGE}, "config": {"cmd": SERVE}}
    (deploy / "once.json").write_text(json.dumps(descriptor))
    marker_home = service.tmp / "deployment-home"
    service.extra_config = {"deployment": {"mode": "init", "home_dir": str(marker_home)}}
    service.start()
    listed = json.loads(service.cli("list", "--json").stdout)
    assert [c["name"] for c in listed] == ["once"]
    markers = {p.name for p in marker_home.iterdir()}
    assert markers, "init mode leaves its marker in deployment.home_dir"
    assert not markers & {p.name for p in service.home.iterdir()}
    service.stop()

    # The marker decides: with it, a descriptor whose container is gone is not applied;
    # once it is removed, the directory is applied again.
    from ocirt.daemon.main import build, load_config_file

    other = build(load_config_file(str(service.config_path)), service.cgroup_parent)
    try:
        other.manager.remove(listed[0]["id"], True)
    finally:
        other.close(stop_containers=False)
    service.start()
    assert json.loads(service.cli("list", "--json").stdout) == []
    service.stop()
    for name in markers:
        path = marker_home / name
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()
    service.start()
    again = json.loads(service.cli("list", "--json").stdout)
    assert [c["name"] for c in again] == ["once"]
