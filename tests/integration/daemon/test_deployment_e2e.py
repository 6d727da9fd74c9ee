"""Deployment descriptors applied by the real daemon to runc containers
(docs/kanto-features-notes.md §2.4): Kanto's init marker, and update mode's start, live
update, recreate and rollback (a new container that cannot start, one that never turns
healthy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from service_harness import IMAGE, Service, deployed, in_container, never_healthy_layout

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def descriptor(name: str, image: str = IMAGE, **config: Any) -> dict[str, Any]:
    policy = config.pop("restart_policy", "no")
    return {
        "container_name": name,
        "image": {"name": image},
        "config": {"cmd": SERVE, **config},
        "host_config": {"network_mode": "bridge", "restart_policy": {"type": policy}},
    }


def write(service: Service, name: str, doc: dict[str, Any]) -> None:
    path = service.tmp / "deploy" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def containers(service: Service) -> dict[str, dict[str, Any]]:
    done = service.cli("list", "--json")
    assert done.returncode == 0, done.stderr
    return {c["name"]: c for c in json.loads(done.stdout)}


def restart(service: Service, runs: int) -> str:
    """Restart the daemon (its containers keep running) and wait for its deployment."""
    service.stop()
    service.start()
    return deployed(service, runs)


def test_init_mode_deploys_once_and_leaves_kantos_marker(service: Service) -> None:
    service.extra_config["deployment"] = {"mode": "init"}
    write(service, "nested/web.json", descriptor("web", env=["FROM=init"]))
    service.start()
    deployed(service, 1)
    listed = containers(service)
    assert list(listed) == ["web"]
    assert listed["web"]["state"]["status"] == "RUNNING"
    assert in_container(service, listed["web"]["id"], "sh", "-c", "echo $FROM").strip() == "init"
    assert (service.home / "deployment").is_dir()
    # The marker is there: a new descriptor is not deployed at the next start.
    write(service, "later.json", descriptor("later"))
    restart(service, 2)
    assert list(containers(service)) == ["web"]


def test_update_mode_starts_updates_in_place_and_recreates(service: Service) -> None:
    service.extra_config["update_agent"] = {"activation_monitor": "1s"}
    write(service, "app.json", descriptor("app", env=["V=1"]))
    service.start()
    deployed(service, 1)
    first = containers(service)["app"]
    assert first["state"]["status"] == "RUNNING"
    cid = first["id"]

    # Stopped by the user, unchanged: started again, same container.
    assert service.cli("stop", cid).returncode == 0
    assert containers(service)["app"]["state"]["status"] == "STOPPED"
    restart(service, 2)
    again = containers(service)["app"]
    assert (again["id"], again["state"]["status"]) == (cid, "RUNNING")

    # Only the restart policy changed: applied live, same id, still running.
    write(service, "app.json", descriptor("app", env=["V=1"], restart_policy="always"))
    restart(service, 3)
    updated = containers(service)["app"]
    assert (updated["id"], updated["state"]["status"]) == (cid, "RUNNING")
    assert updated["config"]["restartPolicy"]["type"] == "ALWAYS"

    # The env changed: a new container runs with it, the old one is gone.
    write(service, "app.json", descriptor("app", env=["V=2"], restart_policy="always"))
    log = restart(service, 4)
    listed = containers(service)
    assert list(listed) == ["app"]
    new = listed["app"]
    assert new["id"] != cid and new["state"]["status"] == "RUNNING"
    assert in_container(service, new["id"], "sh", "-c", "echo $V").strip() == "2"
    assert f"replaced app ({cid}) with {new['id']}" in log


def test_a_new_container_that_cannot_start_is_rolled_back(service: Service) -> None:
    service.extra_config["update_agent"] = {"activation_monitor": "1s"}
    write(service, "app.json", descriptor("app", env=["V=1"]))
    service.start()
    deployed(service, 1)
    cid = containers(service)["app"]["id"]
    broken = descriptor("app", env=["V=2"])
    broken["config"]["cmd"] = ["/no/such/program"]
    write(service, "app.json", broken)
    log = restart(service, 2)
    listed = containers(service)
    assert list(listed) == ["app"]
    assert (listed["app"]["id"], listed["app"]["state"]["status"]) == (cid, "RUNNING")
    assert in_container(service, cid, "sh", "-c", "echo $V").strip() == "1"
    assert "rolled back: removed" in log and f"app ({cid}) runs again" in log


def test_an_unhealthy_new_container_is_rolled_back(
    service: Service, busybox_rootfs: Path, tmp_path: Path
) -> None:
    from ocirt.image.service import ImageService

    layout = never_healthy_layout(busybox_rootfs, tmp_path / "never")
    ImageService(service.home).load(layout, name="localhost/hc")
    service.extra_config["update_agent"] = {"activation_monitor": "1s", "activation_timeout": "30s"}
    write(service, "app.json", descriptor("app", env=["V=1"]))
    service.start()
    deployed(service, 1)
    cid = containers(service)["app"]["id"]
    # unless-stopped: the health monitor restarts it when it turns unhealthy; the gate
    # still reports the health, not the stop that the restart made.
    sick = descriptor("app", "localhost/hc:never", env=["V=2"], restart_policy="unless-stopped")
    write(service, "app.json", sick)
    log = restart(service, 2)
    listed = containers(service)
    assert list(listed) == ["app"]
    assert (listed["app"]["id"], listed["app"]["imageRef"]) == (cid, IMAGE)
    assert listed["app"]["state"]["status"] == "RUNNING"
    assert in_container(service, cid, "sh", "-c", "echo $V").strip() == "1"
    assert "is unhealthy; rolled back" in log
