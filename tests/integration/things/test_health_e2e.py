"""Health checks end to end: images with a HEALTHCHECK, run by the real daemon in runc
containers, and updates gated on them (`ocirt apply`: the agent's autonomous mode)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from service_harness import IMAGE, REPO, WAIT, Service, in_container

pytestmark = pytest.mark.integration

SERVE = "touch /tmp/ready; trap 'exit 0' TERM INT; while :; do sleep 1; done"
MS = 1_000_000
HUNG = "sleep 1000"
# tag, Healthcheck.Test, timeout (ms), retries
HEALTHCHECKS = (
    ("good", ["CMD-SHELL", "test -f /tmp/ready"], 5000, 2),
    ("never", ["CMD", "false"], 5000, 2),
    ("hung", ["CMD", *HUNG.split()], 1000, 1000),
    ("hungsh", ["CMD-SHELL", f"{HUNG}; echo never"], 1000, 1000),
)


def _mkimage() -> Any:
    spec = importlib.util.spec_from_file_location("mkimage", REPO / "hack" / "mkimage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mkimage"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def health_layouts(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OCI layouts of busybox images: `good` (its check passes once the container has made
    /tmp/ready), `never` (its check always fails), and `hung`, `hungsh` (their check
    hangs past its 1 s timeout: directly, and in a shell that waits for it)."""
    mk = _mkimage()
    layers = mk.split_rootfs(busybox_rootfs, 1)
    base = tmp_path_factory.mktemp("health")
    for tag, test, timeout, retries in HEALTHCHECKS:
        config = {
            "Cmd": ["sh", "-c", SERVE],
            "Env": ["PATH=/bin:/usr/bin"],
            "Healthcheck": {"Test": test, "Interval": 300 * MS, "Timeout": timeout * MS,
                            "Retries": retries},
        }  # fmt: skip
        layout = base / tag
        desc = mk.write_image(layout, layers, config=config)
        mk.write_index(layout, tag, [desc], nested=False)
    return base


def load(service: Service, layouts: Path) -> None:
    from ocirt.image.service import ImageService

    for tag, *_ in HEALTHCHECKS:
        ImageService(service.home).load(layouts / tag, name="localhost/hc")


def apply(service: Service, tmp_path: Path, *components: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "desired.json"
    path.write_text(json.dumps({"domains": [{"id": "containers", "components": components}]}))
    done = service.cli("apply", "--json", str(path))
    assert done.stdout, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def component(name: str, image: str, *pairs: tuple[str, str]) -> dict[str, Any]:
    config = [{"key": "image", "value": image}] + [{"key": k, "value": v} for k, v in pairs]
    return {"id": name, "version": "1", "config": config}


def get(service: Service, name: str) -> dict[str, Any]:
    done = service.cli("get", name)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def wait_until(what: str, predicate: Any) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start(service: Service, layouts: Path) -> None:
    load(service, layouts)
    service.extra_config["update_agent"] = {"activation_monitor": "1s", "activation_timeout": "30s"}
    service.start()


def test_a_healthy_image_activates_and_shows_its_health(
    service: Service, health_layouts: Path, tmp_path: Path
) -> None:
    start(service, health_layouts)
    result = apply(service, tmp_path, component("web", "localhost/hc:good"))
    assert result["status"] == "COMPLETED", result["feedback"]
    shown = get(service, "web")
    assert shown["health"]["status"] == "healthy"
    assert shown["health"]["log"][-1]["exitCode"] == 0
    listed = service.cli("list")
    assert "Running (healthy)" in listed.stdout  # Kanto's status column, with the health


def test_an_update_that_never_turns_healthy_is_rolled_back(
    service: Service, health_layouts: Path, tmp_path: Path
) -> None:
    start(service, health_layouts)
    serve = [("cmd", "sh"), ("cmd", "-c"), ("cmd", SERVE)]
    first = apply(service, tmp_path, component("app", IMAGE, ("env", "V=1"), *serve))
    assert first["status"] == "COMPLETED", first["feedback"]
    old = get(service, "app")
    bad = component("app", "localhost/hc:never", ("env", "V=2"), ("restartPolicy", "no"))
    result = apply(service, tmp_path, bad)
    assert result["status"] == "INCOMPLETE"
    statuses = [f["status"] for f in result["feedback"]]
    assert statuses[-5:] == [
        "ACTIVATION_FAILURE", "ROLLBACK", "ROLLBACK_SUCCESS", "CLEANUP_SUCCESS", "INCOMPLETE",
    ]  # fmt: skip
    failure = result["feedback"][statuses.index("ACTIVATION_FAILURE")]["actions"][0]
    assert failure["message"] == "container app is unhealthy"
    now = get(service, "app")
    assert (now["id"], now["imageRef"], now["state"]["status"]) == (old["id"], IMAGE, "RUNNING")
    env = in_container(service, old["id"], "cat", "/proc/1/environ").split("\0")
    assert "V=1" in env and "V=2" not in env
    listed = json.loads(service.cli("list", "--json").stdout)
    assert [c["name"] for c in listed] == ["app"]


def test_an_unhealthy_unless_stopped_container_is_restarted(
    service: Service, health_layouts: Path
) -> None:
    start(service, health_layouts)
    created = service.cli("create", "-n", "sick", "--start", "localhost/hc:never")
    assert created.returncode == 0, created.stderr
    first = get(service, "sick")["state"]["startedAt"]

    def restarted() -> bool:
        state = get(service, "sick")["state"]
        return state["status"] == "RUNNING" and state["startedAt"] != first

    wait_until("the unhealthy container's restart", restarted)
    assert "restarting unhealthy container sick" in service.log_path.read_text()


def test_unhealthy_is_shown_when_the_policy_keeps_it(
    service: Service, health_layouts: Path
) -> None:
    start(service, health_layouts)
    created = service.cli("create", "-n", "kept", "--rp", "no", "--start", "localhost/hc:never")
    assert created.returncode == 0, created.stderr
    health = wait_until(
        "unhealthy", lambda: (get(service, "kept").get("health") or {}).get("status") == "unhealthy"
    )
    assert health
    shown = get(service, "kept")
    assert shown["state"]["status"] == "RUNNING"  # not restarted
    assert shown["health"]["failingStreak"] >= 2


def hung_probes(service: Service, cid: str) -> list[int]:
    """Host pids of the live `sleep 1000` processes in the container (its cgroup, as
    `runc ps` lists it)."""
    done = subprocess.run(
        ["runc", "--root", str(service.exec_root / "runc"), "ps", "--format", "json", cid],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = []
    for pid in json.loads(done.stdout):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue  # ended meanwhile
        zombie = stat.rsplit(")", 1)[1].split()[0] == "Z"
        if cmdline.split(b"\0")[:2] == HUNG.encode().split() and not zombie:
            found.append(pid)
    return found


@pytest.mark.parametrize("tag", ["hung", "hungsh"])
def test_a_probe_past_its_timeout_is_killed_in_the_container(
    service: Service, health_layouts: Path, tag: str
) -> None:
    start(service, health_layouts)
    created = service.cli("create", "-n", "slow", "--rp", "no", "--start", f"localhost/hc:{tag}")
    assert created.returncode == 0, created.stderr
    cid = get(service, "slow")["id"]

    def timed_out_twice() -> list[dict[str, Any]] | None:
        log = (get(service, "slow").get("health") or {}).get("log", [])
        return log if len(log) >= 2 else None

    log = wait_until("two timed-out probes", timed_out_twice)
    assert {(e["exitCode"], e["output"]) for e in log} == {
        (-1, "Health check exceeded timeout (1s)")
    }
    # The probe running now may be there; none of the timed-out ones may be left.
    assert len(hung_probes(service, cid)) <= 1
    assert get(service, "slow")["state"]["status"] == "RUNNING"
