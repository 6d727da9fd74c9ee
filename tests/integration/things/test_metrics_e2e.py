"""The Metrics feature end to end: real mosquitto, the real daemon, real runc containers
with a known load, and Kanto's metrics conformance cases (ctr_metrics_test.go).

Figures are checked against what the containers were made to do, with tolerances that
only a broken formula misses: a busy loop shows CPU, a 32 MiB fill of /dev/shm under a
64 MiB limit shows memory, an fsynced 8 MiB write shows io, 4 MiB sent over the bridge
shows on both ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from service_harness import IMAGE, Broker, Cloud, Service, in_container, state_updates

pytestmark = pytest.mark.integration

DEFINITION = "com.bosch.iot.suite.edge.metric:Metrics:1.0.0"
SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]
BUSY = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do :; done"]
MIB = 1024 * 1024
PREFIXES = ("cpu.", "memory.", "io.", "net.", "pids")


def metrics_service(service: Service) -> Service:
    service.extra_config = {"things": {"features": ["ContainerFactory", "Metrics"]}}
    return service


def ready(service: Service, cloud: Cloud) -> None:
    metrics_service(service).start()
    cloud.wait_twin("/features/Metrics", lambda t: len(t) >= 1)


def create(cloud: Cloud, cmd: list[str], **config: Any) -> str:
    value = {"imageRef": IMAGE, "start": True, "config": {"cmd": cmd, **config}}
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    assert got.body["status"] == 200, got.body
    cid: str = got.body["value"]
    path = f"/features/Container:{cid}"
    cloud.wait_twin(path, lambda t: "RUNNING" in state_updates(t, cid))
    return cid


def request(cloud: Cloud, value: Any, op: str = "request") -> Any:
    return cloud.call(op, "Metrics", value).body


def data(cloud: Cloud, since: int = 0) -> list[dict[str, Any]]:
    """The data messages received, from index `since` of cloud.messages."""
    with cloud._cond:
        received = list(cloud.messages[since:])
    return [
        m.body
        for m in received
        if m.topic == f"e/{cloud.tenant}/{cloud.thing}"
        and isinstance(m.body, dict)
        and m.body.get("path") == "/features/Metrics/outbox/messages/data"
    ]


def mark(cloud: Cloud) -> int:
    with cloud._cond:
        return len(cloud.messages)


def values(message: dict[str, Any], cid: str) -> dict[str, float] | None:
    for item in message["value"]["snapshot"]:
        if item["originator"] == f"Container:{cid}":
            return {m["id"]: m["value"] for m in item["measurements"]}
    return None


def wait_values(cloud: Cloud, since: int, cid: str, check: Any, what: str) -> dict[str, float]:
    """The first measurements of `cid` after `since` for which `check` holds."""

    def found() -> dict[str, float] | None:
        for message in data(cloud, since):
            got = values(message, cid)
            if got is not None and check(got):
                return got
        return None

    result: dict[str, float] = cloud.wait_for(found, what)
    return result


def container_pid(service: Service, cid: str) -> int:
    state = json.loads((service.home / "containers" / cid / "config.json").read_text())
    return int(state["state"]["pid"])


# ---- the feature and Kanto's conformance cases -----------------------------------------


def test_definition_data_shape_and_filters(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    assert cloud.twin("/features/Metrics") == [
        ("modify", "/features/Metrics", {"definition": [DEFINITION]})
    ]
    a = create(cloud, SERVE)
    b = create(cloud, SERVE)

    # 3s, every container, every measurement (ctr_metrics_test.go's first case).
    asked = int(time.time())
    since = mark(cloud)
    assert request(cloud, {"frequency": "3s"})["status"] == 204
    cloud.wait_for(lambda: len(data(cloud, since)) >= 2, "two data messages")
    raw = [m for m in cloud.messages[since:] if isinstance(m.body, dict)]
    message = next(m for m in raw if m.body.get("path", "").endswith("/data"))
    assert message.topic == f"e/{cloud.tenant}/{cloud.thing}"
    body = message.body
    assert body["topic"] == f"{cloud.prefix}/things/live/messages/data"
    assert body["headers"] == {"response-required": False, "content-type": "application/json"}
    assert set(body["value"]) == {"snapshot", "timestamp"}
    assert isinstance(body["value"]["timestamp"], int) and body["value"]["timestamp"] >= asked
    originators = {i["originator"] for i in body["value"]["snapshot"]}
    assert originators == {f"Container:{a}", f"Container:{b}"}
    for item in body["value"]["snapshot"]:
        ids = [m["id"] for m in item["measurements"]]
        assert all(i.startswith(PREFIXES) for i in ids), ids
        assert all(isinstance(m["value"], float) for m in item["measurements"])
        # Kanto's order; cpu comes from the baseline the request took.
        assert ids == [
            "cpu.utilization", "memory.total", "memory.used", "memory.utilization",
            "io.readBytes", "io.writeBytes", "net.readBytes", "net.writeBytes", "pids",
        ]  # fmt: skip

    # One originator, cpu only, at 2s: nothing else may appear.
    filtered = {"frequency": "2s", "filter": [{"id": ["cpu.*"], "originator": f"Container:{a}"}]}
    assert request(cloud, filtered)["status"] == 204
    since = mark(cloud)
    cloud.wait_for(lambda: len(data(cloud, since)) >= 2, "filtered data")
    for message in data(cloud, since):
        snapshot = message["value"]["snapshot"]
        assert [i["originator"] for i in snapshot] == [f"Container:{a}"]
        assert [m["id"] for m in snapshot[0]["measurements"]] == ["cpu.utilization"]

    # Prefixes as Kanto trims them, over every originator.
    prefix = {"frequency": 1, "filter": [{"id": ["memory", "*pids*"]}]}
    assert request(cloud, prefix)["status"] == 204
    since = mark(cloud)
    got = wait_values(cloud, since, b, lambda v: True, "memory and pids of b")
    assert list(got) == ["memory.total", "memory.used", "memory.utilization", "pids"]

    # A filter that matches nothing: no data at all. Then stop with "0s".
    nothing = {"frequency": 1, "filter": [{"originator": "Container:not-there"}]}
    assert request(cloud, nothing)["status"] == 204
    time.sleep(1.5)  # a tick that may have been under way when the request arrived
    since = mark(cloud)
    time.sleep(3.5)
    assert data(cloud, since) == []
    assert request(cloud, {"frequency": 1})["status"] == 204
    cloud.wait_for(lambda: len(data(cloud, since)) >= 1, "data again")
    assert request(cloud, {"frequency": "0s"})["status"] == 204
    time.sleep(1.5)
    since = mark(cloud)
    time.sleep(3.5)
    assert data(cloud, since) == []
    assert not (service.home / "things" / "metrics_request.json").exists()


def test_bad_requests(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    got = request(cloud, {"frequency": "invalid frequency"})
    assert got["status"] == 400
    assert got["value"] == {
        "error": "messages:parameter.invalid",
        "status": 400,
        "message": 'time: invalid duration "invalid frequency"',
    }
    got = request(cloud, {"frequency": True})
    assert (got["status"], got["value"]["message"]) == (400, "invalid duration: true")
    got = request(cloud, {"frequency": "1s", "filter": "cpu"})
    assert got["status"] == 400 and "filter" in got["value"]["message"]
    got = request(cloud, {"frequency": "5s"}, op="invalidRequest")
    assert got["status"] == 404
    assert got["value"] == {
        "error": "messages:subject.notfound",
        "status": 404,
        "message": "unsupported operation invalidRequest",
    }
    # Refused requests leave nothing behind.
    assert not (service.home / "things" / "metrics_request.json").exists()


def test_paused_reported_stopped_not(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    paused = create(cloud, SERVE)
    stopped = create(cloud, SERVE)
    running = create(cloud, SERVE)
    assert cloud.call("pause", f"Container:{paused}", {}).body["status"] == 204
    assert cloud.call("stop", f"Container:{stopped}", {}).body["status"] == 204
    cloud.wait_twin(
        f"/features/Container:{stopped}", lambda t: "STOPPED" in state_updates(t, stopped)
    )
    since = mark(cloud)
    assert request(cloud, {"frequency": 1})["status"] == 204
    cloud.wait_for(lambda: len(data(cloud, since)) >= 2, "two data messages")
    for message in data(cloud, since):
        originators = {i["originator"] for i in message["value"]["snapshot"]}
        assert originators == {f"Container:{paused}", f"Container:{running}"}
    # A frozen container uses no CPU.
    got = wait_values(cloud, since, paused, lambda v: "cpu.utilization" in v, "paused cpu")
    assert got["cpu.utilization"] == 0.0


def test_a_container_started_during_a_request_reports_cpu_at_once(
    service: Service, cloud: Cloud
) -> None:
    ready(service, cloud)
    since = mark(cloud)
    assert request(cloud, {"frequency": 1, "filter": [{"id": ["cpu", "pids"]}]})["status"] == 204
    cid = create(cloud, SERVE)
    # Its baseline was taken when it reported RUNNING (Kanto's priming): the first data
    # message that has it at all has its CPU too.
    first = wait_values(cloud, since, cid, lambda v: True, "the new container's figures")
    assert list(first) == ["cpu.utilization", "pids"]


# ---- the figures --------------------------------------------------------------------------


def test_cpu_and_memory_under_load(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    busy = create(cloud, BUSY)
    idle = create(cloud, SERVE)
    fill = ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=32; exec sleep 3600"]
    memory = create(cloud, fill, resources={"memory": "64M"})
    since = mark(cloud)
    assert request(cloud, {"frequency": 1})["status"] == 204

    # A busy loop keeps one of the machine's CPUs busy whenever it is scheduled: on a
    # shared machine it gets less than a whole one, but clearly more than an idle shell.
    hot = wait_values(cloud, since, busy, lambda v: "cpu.utilization" in v, "busy cpu")
    assert hot["cpu.utilization"] > 5.0
    # One thread can use one CPU at most: a share of the whole machine, not of one core.
    assert hot["cpu.utilization"] <= 100.0 / (os.cpu_count() or 1) + 10.0
    cold = wait_values(cloud, since, idle, lambda v: "cpu.utilization" in v, "idle cpu")
    assert cold["cpu.utilization"] < 2.0

    got = wait_values(
        cloud, since, memory, lambda v: v.get("memory.used", 0) >= 32 * MIB, "32 MiB used"
    )
    assert got["memory.total"] == 64 * MIB
    assert got["memory.used"] <= 64 * MIB
    assert got["memory.utilization"] == pytest.approx(got["memory.used"] / (64 * MIB) * 100)
    assert got["memory.utilization"] >= 50.0
    # Without a limit the total is the host's memory.
    host_total = _meminfo_total()
    free = wait_values(cloud, since, idle, lambda v: "memory.total" in v, "idle memory")
    assert free["memory.total"] == host_total
    assert free["pids"] >= 1.0


def _meminfo_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal")


def _block_device_of(path: Path) -> str:
    """major:minor of the disk (not the partition) that holds `path`."""
    dev = os.stat(path).st_dev
    node = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if (node / "partition").exists():
        node = node.resolve().parent
    return (node / "dev").read_text().strip()


def _cgroup_dir(pid: int, controller: str) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path(f"/sys/fs/cgroup/{controller}{path}")
    raise AssertionError(f"no {controller} cgroup for {pid}")


def test_io_write_is_counted(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    cid = create(cloud, SERVE)
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        # cgroup v1 on recent kernels counts a group's block I/O only while it has a
        # throttle rule: give it one far above anything this test writes.
        blkio = _cgroup_dir(container_pid(service, cid), "blkio")
        rule = f"{_block_device_of(service.home)} {1 << 40}"
        (blkio / "blkio.throttle.write_bps_device").write_text(rule)
    since = mark(cloud)
    assert request(cloud, {"frequency": 1, "filter": [{"id": ["io.*"]}]})["status"] == 204
    before = wait_values(cloud, since, cid, lambda v: "io.writeBytes" in v, "io figures")
    in_container(service, cid, "dd", "if=/dev/zero", "of=/written", "bs=1M", "count=8",
                 "conv=fsync")  # fmt: skip
    got = wait_values(
        cloud, since, cid,
        lambda v: v["io.writeBytes"] - before["io.writeBytes"] >= 8 * MIB, "8 MiB written",
    )  # fmt: skip
    assert set(got) == {"io.readBytes", "io.writeBytes"}


def test_network_traffic_between_two_containers(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    # nc ends its connection when its stdin ends: keep that open.
    listen = "sleep 3600 | nc -l -p 5000 > /dev/null; exec sleep 3600"
    server = create(cloud, ["sh", "-c", listen])
    client = create(cloud, SERVE)
    host = create(cloud, SERVE, networkMode="host")
    address = re.search(
        r"inet (\d+\.\d+\.\d+\.\d+)", in_container(service, server, "ip", "-4", "addr")
        .split("eth0", 1)[-1]
    )  # fmt: skip
    assert address is not None
    since = mark(cloud)
    assert request(cloud, {"frequency": 1, "filter": [{"id": ["net"]}]})["status"] == 204
    base = wait_values(cloud, since, client, lambda v: "net.writeBytes" in v, "net figures")
    sent = in_container(
        service, client, "sh", "-c",
        f"dd if=/dev/zero bs=1M count=4 2>/dev/null | nc -w 5 {address.group(1)} 5000; echo $?",
    )  # fmt: skip
    assert sent.strip() == "0"
    out = wait_values(
        cloud, since, client,
        lambda v: v["net.writeBytes"] - base["net.writeBytes"] >= 4 * MIB, "4 MiB sent",
    )  # fmt: skip
    assert set(out) == {"net.readBytes", "net.writeBytes"}
    wait_values(cloud, since, server, lambda v: v["net.readBytes"] >= 4 * MIB, "4 MiB received")
    # In host mode the host's interfaces are not the container's: no net figures, and
    # with nothing else asked for, no entry at all.
    for message in data(cloud, since):
        assert values(message, host) is None


# ---- Better than Kanto: the request outlives a reconnect and a restart ------------------


def test_request_survives_broker_and_daemon_restart(
    service: Service, cloud: Cloud, broker: Broker
) -> None:
    ready(service, cloud)
    cid = create(cloud, SERVE)
    wanted = {"frequency": "1s", "filter": [{"id": ["pids"], "originator": f"Container:{cid}"}]}
    assert request(cloud, wanted)["status"] == 204
    stored = json.loads((service.home / "things" / "metrics_request.json").read_text())
    assert stored == {
        "frequency": 1.0,
        "filter": [{"id": ["pids"], "originator": f"Container:{cid}"}],
    }

    broker.stop()
    cloud.messages.clear()
    broker.start()
    cloud.wait_for(lambda: cloud.bootstraps >= 2, "a second bootstrap")
    got = wait_values(cloud, 0, cid, lambda v: True, "data after the reconnect")
    assert got == {"pids": pytest.approx(got["pids"])} and got["pids"] >= 1.0
    assert ("modify", "/features/Metrics") in [(a, p) for a, p, _ in cloud.twin("/features/M")]

    service.stop()
    cloud.messages.clear()
    service.start()
    cloud.wait_twin("/features/Metrics", lambda t: len(t) >= 1)
    got = wait_values(cloud, 0, cid, lambda v: True, "data after the daemon restart")
    assert list(got) == ["pids"]


# ---- ocirt stats ----------------------------------------------------------------------------


def test_stats_no_stream_json(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    busy = create(cloud, BUSY)
    idle = create(cloud, SERVE, resources={"memory": "64M"})
    stopped = create(cloud, SERVE)
    assert cloud.call("stop", f"Container:{stopped}", {}).body["status"] == 204
    cloud.wait_twin(
        f"/features/Container:{stopped}", lambda t: "STOPPED" in state_updates(t, stopped)
    )
    done = service.cli("stats", "--no-stream", "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert set(rows) == {busy, idle}
    # docker stats' CPU %: one busy core is 100 %.
    assert rows[busy]["cpuPercent"] > 5.0
    assert rows[idle]["cpuPercent"] < 5.0
    assert rows[idle]["memoryLimit"] == 64 * MIB
    assert 0 < rows[idle]["memoryUsage"] < 64 * MIB
    assert rows[idle]["pids"] >= 1
    assert rows[idle]["netInput"] is not None and rows[idle]["blockWrite"] is not None

    # By name, and a table.
    name = rows[idle]["name"]
    done = service.cli("stats", "--no-stream", name)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "MEM", "%",
        "NET", "I/O", "BLOCK", "I/O", "PIDS",
    ]  # fmt: skip
    assert len(lines) == 2 and idle[:12] in lines[1] and "64MiB" in lines[1]
    done = service.cli("stats", "--no-stream", "no-such-container")
    assert done.returncode == 1 and "no-such-container" in done.stderr


def test_stats_streams_until_interrupted(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    cid = create(cloud, SERVE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocirt.cli.main", "stats", "--socket", str(service.socket),
         "--json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        second = json.loads(proc.stdout.readline())
        assert [r["id"] for r in first] == [cid] == [r["id"] for r in second]
    finally:
        proc.terminate()
        proc.wait(10)
