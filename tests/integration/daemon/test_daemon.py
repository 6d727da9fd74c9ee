"""The daemon process: restart with running containers (docs/kanto-compatibility.md decision 10),
the
--stop-containers-on-exit switch, deployment descriptors and its config file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from service_harness import IMAGE, Cloud, Service, deployed, in_container, state_updates

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def create_running(cloud: Cloud, name: str) -> str:
    value = {"imageRef": IMAGE, "name": name, "start": True, "config": {"cmd": SERVE}}
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    assert got.body["status"] == 200, got.body
    cid: str = got.body["value"]
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: "RUNNING" in state_updates(t, cid))
    return cid


def pid_of(service: Service, cid: str) -> int:
    done = subprocess.run(
        ["runc", "--root", str(service.exec_root / "runc"), "state", cid],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    state = json.loads(done.stdout)
    assert state["status"] == "running"
    return int(state["pid"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_restart_keeps_containers_and_republishes(service: Service, cloud: Cloud) -> None:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    keep = create_running(cloud, "keep")
    gone = create_running(cloud, "gone")
    pid = pid_of(service, keep)

    assert service.stop() == 0
    assert alive(pid), "decision 10: the daemon's stop leaves containers running"
    assert in_container(service, keep, "echo", "still here").strip() == "still here"

    # While the daemon is down, one container disappears (removed by another manager).
    from ocirt.daemon.main import build, load_config_file

    other = build(load_config_file(str(service.config_path)), service.cgroup_parent)
    try:
        other.manager.remove(gone, True)
    finally:
        other.close(stop_containers=False)

    cloud.messages.clear()
    service.start()
    keep_path = f"/features/Container:{keep}"
    cloud.wait_twin(keep_path, lambda t: any(p == keep_path for _, p, _ in t))
    feature = next(v for a, p, v in cloud.twin(keep_path) if p == keep_path)
    assert feature["properties"]["status"]["state"]["status"] == "RUNNING"
    assert feature["properties"]["status"]["state"]["pid"] == pid
    assert feature["properties"]["status"]["name"] == "keep"
    gone_path = f"/features/Container:{gone}"
    cloud.wait_twin(gone_path, lambda t: ("delete", gone_path, None) in t)
    assert pid_of(service, keep) == pid

    # The re-attached container is still managed: a stop ends it.
    assert cloud.call("stop", f"Container:{keep}", {}).body["status"] == 204
    cloud.wait_twin(keep_path, lambda t: "STOPPED" in state_updates(t, keep))
    assert not alive(pid)


def test_stop_containers_on_exit(service: Service, cloud: Cloud) -> None:
    service.start("--stop-containers-on-exit")
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    cid = create_running(cloud, "short")
    pid = pid_of(service, cid)
    assert service.stop() == 0
    assert not alive(pid)


def test_deployment_descriptors_are_applied_once(service: Service, cloud: Cloud) -> None:
    deploy = service.tmp / "deploy"
    deploy.mkdir()
    descriptor = {
        "container_name": "deployed",
        "image": {"name": IMAGE},
        "config": {"cmd": SERVE, "env": ["FROM=descriptor"]},
        "host_config": {"network_mode": "bridge", "restart_policy": {"type": "no"}},
    }
    (deploy / "deployed.json").write_text(json.dumps(descriptor))
    (deploy / "ignored.txt").write_text("{not a descriptor}")
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    deployed(service, 1)
    listed = json.loads(service.cli("list", "--json").stdout)
    assert [c["name"] for c in listed] == ["deployed"]
    cid = listed[0]["id"]
    assert listed[0]["state"]["status"] == "RUNNING"
    assert in_container(service, cid, "sh", "-c", "echo $FROM").strip() == "descriptor"
    assert listed[0]["config"]["restartPolicy"] == {"type": "NO"}

    service.stop()
    service.start()
    deployed(service, 2)
    again = json.loads(service.cli("list", "--json").stdout)
    assert [c["id"] for c in again] == [cid]


def test_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"manager": {"home_dir": "/x", "colour": "blue"}}))
    done = subprocess.run(
        [sys.executable, "-m", "ocirt.cli.main", "daemon", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (f"Error: {config}: unknown configuration keys: manager.colour")
