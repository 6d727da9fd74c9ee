"""A container whose config.json a bad flash page destroyed (issue 12 item 5), through
the real daemon: kept running with its logs, shown as UNKNOWN with the reason in `list`,
`get` and the twin, and removable with `ocirt remove`."""

from __future__ import annotations

import json
import subprocess

import pytest
from service_harness import IMAGE, Cloud, Service, state_updates

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "echo kept; trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def runc_ids(service: Service) -> list[str]:
    done = subprocess.run(
        ["runc", "--root", str(service.exec_root / "runc"), "list", "-q"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.split()


def test_a_damaged_container_is_kept_shown_and_removable(service: Service, cloud: Cloud) -> None:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    value = {"imageRef": IMAGE, "name": "flash", "start": True, "config": {"cmd": SERVE}}
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    cid: str = got.body["value"]
    path = f"/features/Container:{cid}"
    cloud.wait_twin(path, lambda t: "RUNNING" in state_updates(t, cid))
    assert service.stop() == 0
    directory = service.home / "containers" / cid
    (directory / "config.json").write_bytes(b"\x00" * 300)

    cloud.messages.clear()
    service.start()
    cloud.wait_twin(path, lambda t: any(p == path for _, p, _ in t))
    feature = next(v for a, p, v in cloud.twin(path) if p == path)
    state = feature["properties"]["status"]["state"]
    assert state["status"] == "UNKNOWN"
    assert state["error"].startswith("damaged: invalid persisted container")
    assert cid in runc_ids(service)
    listed = json.loads(service.cli("list", "--json").stdout)
    assert [(c["id"], c["state"]["status"]) for c in listed] == [(cid, "UNKNOWN")]
    assert json.loads(service.cli("get", cid).stdout)["state"]["status"] == "UNKNOWN"
    assert "kept" in service.cli("logs", cid).stdout
    log = service.log_path.read_text()
    assert f"container {cid} is damaged: invalid persisted container" in log
    refused = service.cli("start", cid)
    assert refused.returncode != 0 and "is damaged" in refused.stderr

    removed = service.cli("remove", cid)
    assert removed.returncode == 0, removed.stderr
    assert cid not in runc_ids(service)
    assert not directory.exists()
    cloud.wait_twin(path, lambda t: ("delete", path, None) in t)
    assert json.loads(service.cli("list", "--json").stdout) == []
