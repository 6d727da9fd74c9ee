"""The Ditto API end to end: real mosquitto, the real daemon, real runc containers.

Requests are the examples of Kanto's API documentation (ContainerFactory and Container
features) with the thing id, the image and placeholders filled in.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from service_harness import IMAGE, Cloud, Service, in_container, state_updates

pytestmark = pytest.mark.integration

# A PID 1 that ends on SIGTERM and SIGINT (a PID 1 without handlers ignores both).
SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def seed_headers(cloud: Cloud, req_id: str) -> dict[str, Any]:
    return {"content-type": "application/json", "correlation-id": f"corr-{req_id}"}


def expect_response(
    cloud: Cloud, req_id: str, op: str, feature: str, status: int, value: Any = ...
) -> None:
    got = cloud.response(req_id)
    assert got.topic == f"command//{cloud.thing}/res/{req_id}/{status}"
    body: dict[str, Any] = {
        "topic": f"{cloud.prefix}/things/live/messages/{op}",
        "headers": (
            {"correlation-id": f"corr-{req_id}"}
            if status == 204
            else {"content-type": "application/json", "correlation-id": f"corr-{req_id}"}
        ),
        "path": f"/features/{feature}/outbox/messages/{op}",
    }
    if value is not ...:
        body["value"] = value
    body["status"] = status
    assert got.body == body


def ready(service: Service, cloud: Cloud) -> None:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    assert cloud.twin("/features/ContainerFactory") == [
        (
            "modify",
            "/features/ContainerFactory",
            {"definition": ["com.bosch.iot.suite.edge.containers:ContainerFactory:1.3.0"]},
        )
    ]


def runc_state(service: Service, cid: str) -> dict[str, Any]:
    done = subprocess.run(
        ["runc", "--root", str(service.exec_root / "runc"), "state", cid],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return json.loads(done.stdout) if done.returncode == 0 else {}


def test_create_seed_message(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    req = cloud.send("create", "ContainerFactory", {"imageRef": IMAGE, "start": True})
    got = cloud.response(req)
    cid = got.body["value"]
    expect_response(cloud, req, "create", "ContainerFactory", 200, cid)
    feature = f"/features/Container:{cid}"
    cloud.wait_twin(feature, lambda t: "RUNNING" in state_updates(t, cid))
    twin = cloud.twin(feature)
    assert twin[0][:2] == ("modify", feature)
    status = twin[0][2]["properties"]["status"]
    assert twin[0][2]["definition"] == ["com.bosch.iot.suite.edge.containers:Container:1.5.0"]
    assert (status["name"], status["imageRef"]) == (cid, IMAGE)
    assert status["config"] == {
        "domainName": f"{cid}-domain",
        "hostName": f"{cid}-host",
        "restartPolicy": {"type": "UNLESS_STOPPED"},
        "networkMode": "BRIDGE",
        "log": {"type": "JSON_FILE", "maxFiles": 2, "maxSize": "100M", "mode": "BLOCKING"},
    }
    assert status["state"] == {"status": "CREATED", "pid": -1}
    assert state_updates(twin, cid)[:2] == ["CREATED", "RUNNING"]
    removed = cloud.send("remove", f"Container:{cid}", True)
    expect_response(cloud, removed, "remove", f"Container:{cid}", 204)
    cloud.wait_twin(feature, lambda t: t[-1] == ("delete", feature, None))


def test_create_with_config_exact_seed_is_refused(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    seed = (Path(__file__).parent / "seed_create_with_config.json").read_text()
    raw = seed.replace("docker.io/library/influxdb:1.8.4", IMAGE).replace(
        "edge/device/", f"{cloud.prefix}/"
    )
    req = cloud.send("createWithConfig", "ContainerFactory", raw=raw.encode())
    got = cloud.response(req)
    assert got.topic == f"command//{cloud.thing}/res/{req}/400"
    assert got.body["value"] == {
        "error": "messages:parameter.invalid",
        "status": 400,
        "message": "source and destination must be set for a mount point",
    }


def test_every_container_operation(service: Service, cloud: Cloud, tmp_path: Path) -> None:
    ready(service, cloud)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("from the host\n")
    value = {
        "imageRef": IMAGE,
        "start": True,
        "config": {
            "domainName": "",
            "hostName": "",
            "env": ["GREETING=hi"],
            "cmd": SERVE,
            "privileged": False,
            "extraHosts": ["ctrhost:host_ip"],
            "extraCapabilities": [],
            "networkMode": "bridge",
            "openStdin": False,
            "tty": False,
            "mountPoints": [
                {"source": str(shared), "destination": "/data", "propagationMode": "rprivate"}
            ],
            "decryption": {"keys": [], "recipients": []},
            "devices": [
                {"pathOnHost": "/dev/null", "pathInContainer": "/dev/mynull",
                 "cgroupPermissions": "rwm"}
            ],
            "restartPolicy": {"type": "unless-stopped", "maxRetryCount": 0, "retryTimeout": 0},
            "log": {"type": "json-file", "maxFiles": 2, "maxSize": "100M", "rootDir": "",
                    "mode": "blocking", "maxBufferSize": "1M"},
            "resources": {"memory": "", "memoryReservation": "", "memorySwap": ""},
        },
    }  # fmt: skip
    req = cloud.send("createWithConfig", "ContainerFactory", value)
    cid = cloud.response(req).body["value"]
    expect_response(cloud, req, "createWithConfig", "ContainerFactory", 200, cid)
    feature = f"Container:{cid}"
    path = f"/features/{feature}"
    cloud.wait_twin(path, lambda t: "RUNNING" in state_updates(t, cid))

    # What the config asked for, seen from inside the container.
    assert in_container(service, cid, "hostname").strip() == f"{cid}-host"
    assert in_container(service, cid, "cat", "/data/hello.txt") == "from the host\n"
    assert in_container(service, cid, "sh", "-c", "echo $GREETING").strip() == "hi"
    assert "ctrhost" in in_container(service, cid, "cat", "/etc/hosts")
    assert service.gateway in [
        line.split()[0]
        for line in in_container(service, cid, "cat", "/etc/hosts").splitlines()
        if line.strip().endswith("ctrhost")
    ]
    in_container(service, cid, "sh", "-c", "echo x > /dev/mynull")

    def step(op: str, value: Any, status: int = 204) -> None:
        req = cloud.send(op, feature, value)
        expect_response(cloud, req, op, feature, status)

    step("stop", {})
    assert runc_state(service, cid).get("status") != "running"
    step("start", {})
    step("pause", {})
    assert runc_state(service, cid)["status"] == "paused"
    step("resume", {})
    assert runc_state(service, cid)["status"] == "running"
    step("stopWithOptions", {"signal": "SIGINT", "timeout": 30, "force": True})
    step("start", {})
    step("rename", "new_container_name")
    update = {
        "restartPolicy": {"type": "on-failure", "maxRetryCount": 3, "timeout": 10},
        "resources": {"memory": "500M", "memoryReservation": "300M", "memorySwap": "1G"},
    }
    step("update", update)
    limit = in_container(service, cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert int(limit) == 500 * 1024 * 1024

    refused = cloud.send("remove", feature, False)
    got = cloud.response(refused)
    assert got.topic.endswith("/500")
    assert got.body["value"] == {
        "error": "messages:execution.failed",
        "status": 500,
        "message": f"container with id = {cid} is not stopped - must set the force flag "
        "to true to remove it",
    }
    step("remove", True)
    cloud.wait_twin(path, lambda t: bool(t) and t[-1][0] == "delete")
    assert runc_state(service, cid) == {}

    twin = cloud.twin(path)
    assert twin[0][1] == path  # the created feature comes first
    assert state_updates(twin, cid) == [
        "CREATED", "RUNNING", "STOPPED", "RUNNING", "PAUSED", "RUNNING", "STOPPED", "RUNNING",
        "DEAD",
    ]  # fmt: skip
    names = [v for a, p, v in twin if p.endswith("/status/name")]
    assert names == ["new_container_name"]
    configs = [v for a, p, v in twin if p.endswith("/status/config")]
    assert configs[-1]["restartPolicy"] == {
        "type": "ON_FAILURE",
        "maxRetryCount": 3,
        "retryTimeout": 10,
    }
    assert configs[-1]["resources"] == {
        "memory": "500M",
        "memoryReservation": "300M",
        "memorySwap": "1G",
    }
    kinds = [(a, p.removeprefix(path)) for a, p, _ in twin]
    first = {k: kinds.index(k) for k in kinds}
    assert (
        first[("modify", "/properties/status/name")]
        < first[("modify", "/properties/status/config")]
        < len(kinds) - 2
    )
    assert kinds[-1] == ("delete", "")
