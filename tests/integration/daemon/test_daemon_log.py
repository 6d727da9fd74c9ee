"""What the daemon says at INFO (issue 13 item 7): each lifecycle step of a container,
a failed start once with runc's error, and a `ready` line that tells where it serves."""

from __future__ import annotations

import re

import pytest
from service_harness import IMAGE, Cloud, Service, state_updates

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def create(cloud: Cloud, name: str, cmd: list[str], **config: object) -> str:
    value = {"imageRef": IMAGE, "name": name, "start": True, "config": {"cmd": cmd, **config}}
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    assert got.body["status"] == 200, got.body
    cid: str = got.body["value"]
    return cid


def test_the_log_names_each_lifecycle_step(service: Service, cloud: Cloud) -> None:
    service.extra_config = {"log": {"log_level": "INFO"}}
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    log = service.log_path

    def said(pattern: str, count: int = 1) -> bool:
        return len(re.findall(pattern, log.read_text())) >= count

    ready = (
        f"ocirt daemon ready (pid {service.proc.pid if service.proc else 0}): "
        f"socket {service.socket}, bridge {service.bridge}, home {service.home}"
    )
    cloud.wait_for(lambda: ready in log.read_text(), "the ready line")

    flaky = create(
        cloud, "flaky", ["sh", "-c", "exit 3"],
        restartPolicy={"type": "on-failure", "maxRetryCount": 1, "retryTimeout": 0},
    )  # fmt: skip
    tag = re.escape(f"container {flaky} (flaky)")
    cloud.wait_for(lambda: said(rf"{tag} exited with code 3", 2), "two exits")
    serving = create(cloud, "serving", SERVE)
    path = f"/features/Container:{serving}"
    cloud.wait_twin(path, lambda t: "RUNNING" in state_updates(t, serving))
    assert cloud.call("stop", f"Container:{serving}", {}).body["status"] == 204
    assert cloud.call("remove", f"Container:{serving}", True).body["status"] == 204
    broken = create(cloud, "broken", ["/no/such/program"])

    text = log.read_text()
    assert f"container {flaky} (flaky) created from image {IMAGE}" in text
    assert re.search(rf"{tag} started \(pid \d+\)", text)
    assert (
        f"container {flaky} (flaky) restarted by its restart policy on-failure (restart 1)" in text
    )
    assert len(re.findall(rf"{tag} started \(pid \d+\)", text)) == 2
    assert len(re.findall(rf"{tag} exited with code 3", text)) == 2
    serve_tag = f"container {serving} (serving)"
    assert f"{serve_tag} stopped (exit code 0)" in text
    assert f"{serve_tag} removed" in text
    failures = [line for line in text.splitlines() if f"{broken} (broken) failed to start" in line]
    # Once, with runc's own words, and no traceback.
    assert len(failures) == 1, failures
    assert "/no/such/program" in failures[0] and "no such file or directory" in failures[0]
    assert "Traceback" not in text
    for line in (f"container {flaky} (flaky) created", f"{serve_tag} stopped"):
        assert re.search(rf" INFO ocirt\.\S+: {re.escape(line)}", text), line
