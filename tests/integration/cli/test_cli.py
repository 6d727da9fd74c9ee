"""The `ocirt` CLI against a running daemon: every command, --json, exit codes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from service_harness import IMAGE, WAIT, Service, in_container

pytestmark = pytest.mark.integration


def ok(service: Service, *argv: str) -> str:
    done = service.cli(*argv)
    assert done.returncode == 0, (argv, done.stderr)
    assert done.stderr == "" or "Error" not in done.stderr
    return done.stdout


def fails(service: Service, *argv: str) -> str:
    done = service.cli(*argv)
    assert done.returncode == 1, (argv, done.stdout)
    assert done.stderr.startswith("Error: "), done.stderr
    return done.stderr.strip()


def test_every_command(service: Service, tmp_path: Path) -> None:
    service.start()
    talk = ["sh", "-c", "trap 'exit 0' TERM INT; echo hello; echo oops >&2; "
            "while :; do sleep 1; done"]  # fmt: skip
    cid = ok(service, "create", "-n", "web", "--e", "A=1", "--rp", "no", IMAGE, *talk).strip()
    assert len(cid) == 36
    got = json.loads(ok(service, "get", "web"))
    assert (got["id"], got["name"], got["state"]["status"]) == (cid, "web", "CREATED")
    assert got["config"]["env"] == ["A=1"]

    ok(service, "start", "web")
    assert in_container(service, cid, "sh", "-c", "echo $A").strip() == "1"
    table = ok(service, "list").split("\n")
    assert [cell.strip() for cell in table[1].split("|")] == [
        "ID", "Name", "Image", "Status", "Finished At", "Exit Code", ""
    ]  # fmt: skip
    assert [cell.strip() for cell in table[3].split("|")] == [
        cid, "web", IMAGE, "Running", "", "0", ""
    ]  # fmt: skip
    assert ok(service, "list", "-q").split() == [cid]
    assert ok(service, "list", "-q", "--filter", "status=running").split() == [cid]
    assert ok(service, "list", "-q", "--filter", "status=exited").split() == []
    assert ok(service, "list", "-q", "--filter", f"image={IMAGE}").split() == [cid]

    logs = service.cli("logs", "web")
    assert (logs.stdout, logs.stderr) == ("hello\n", "oops\n")
    entries = [json.loads(line) for line in ok(service, "logs", "--json", "web").splitlines()]
    assert [(e["stream"], e["log"]) for e in entries] == [
        ("stdout", "hello\n"),
        ("stderr", "oops\n"),
    ]
    assert ok(service, "logs", "--tail", "1", "--json", "web").count("\n") == 1

    paused = json.loads(ok(service, "pause", "--json", "web"))
    assert paused["state"]["status"] == "PAUSED"
    ok(service, "resume", "web")
    ok(service, "rename", "web", "db")
    ok(service, "update", "--rp", "on-failure", "--rp-cnt", "2", "-m", "64M", "db")
    got = json.loads(ok(service, "get", "db"))
    assert got["config"]["restartPolicy"] == {"type": "ON_FAILURE", "maxRetryCount": 2}
    assert got["config"]["resources"]["memory"] == "64M"
    limit = in_container(service, cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert int(limit) == 64 * 1024 * 1024

    assert fails(service, "remove", "db") == (
        f"Error: container with id = {cid} is not stopped - must set the force flag to true "
        "to remove it"
    )
    stopped = json.loads(ok(service, "stop", "--json", "-t", "10", "db"))
    assert stopped["state"]["status"] == "STOPPED"
    assert fails(service, "stop", "db") == (
        f"Error: cannot perform stop operation for container: {cid}, with state: Stopped"
    )
    info = dict(line.split(": ", 1) for line in ok(service, "sysinfo").splitlines())
    assert info["containers"] == "1"
    assert info["homeDir"] == str(service.home)
    assert json.loads(ok(service, "remove", "--json", "db")) == [{"id": cid}]
    assert ok(service, "list", "-q") == ""


def test_create_from_a_kanto_descriptor(service: Service, tmp_path: Path) -> None:
    service.start()
    descriptor = tmp_path / "ctr.json"
    descriptor.write_text(json.dumps({
        "container_name": "fromfile",
        "image": {"name": IMAGE},
        "config": {"cmd": ["sleep", "60"]},
        "host_config": {"network_mode": "host", "privileged": False},
    }))  # fmt: skip
    created = json.loads(ok(service, "create", "--json", "-f", str(descriptor)))
    assert created["name"] == "fromfile"
    assert created["config"]["networkMode"] == "HOST"
    assert fails(service, "create", "-f", str(descriptor), IMAGE) == (
        "Error: no arguments are expected when creating a container from file"
    )


def test_errors_and_exit_codes(service: Service) -> None:
    service.start()
    assert fails(service, "start", "nope") == (
        "Error: The requested container with ID = nope was not found."
    )
    assert fails(service, "create") == "Error: container image argument is expected"
    assert fails(service, "create", "--mp", "only-one-part", IMAGE).startswith(
        "Error: invalid mount"
    )
    assert fails(service, "create", "--rp", "sometimes", IMAGE) == (
        "Error: unsupported restart policy type sometimes"
    )
    assert fails(service, "list", "--filter", "colour=red") == "Error: no filter: colour"
    service.stop()
    assert fails(service, "list").startswith("Error: cannot reach the ocirt daemon")


def test_logs_since(service: Service) -> None:
    service.start()
    # Three lines, then a wait for a file that the test creates after taking its cut.
    # One stream only: the order of lines across stdout and stderr is not defined.
    script = (
        "trap 'exit 0' TERM INT; echo b1; echo b2; echo b3; "
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
        "echo a1; echo a2; echo a3; while :; do sleep 1; done"
    )
    cid = ok(service, "create", "-n", "cut", "--rp", "no", IMAGE, "sh", "-c", script).strip()
    ok(service, "start", "cut")

    def lines(*argv: str) -> list[str]:
        out = ok(service, "logs", "--json", *argv, "cut")
        return [json.loads(line)["log"].strip() for line in out.splitlines()]

    deadline = time.monotonic() + WAIT
    while lines("--tail", "-1") != ["b1", "b2", "b3"]:
        assert time.monotonic() < deadline, lines("--tail", "-1")
        time.sleep(0.05)
    before = json.loads(ok(service, "logs", "--json", "--tail", "1", "cut"))["time"]
    # The cut is taken after b3 was logged and before the container may print a1.
    cut = datetime.now(UTC)
    assert cut > datetime.fromisoformat(before)
    in_container(service, cid, "touch", "/tmp/go")
    while lines("--tail", "-1")[-1:] != ["a3"]:
        assert time.monotonic() < deadline, lines("--tail", "-1")
        time.sleep(0.05)

    everything = ["b1", "b2", "b3", "a1", "a2", "a3"]
    assert lines("--tail", "-1") == everything
    for form in (cut.isoformat(), cut.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), str(cut.timestamp())):
        assert lines("--tail", "-1", "--since", form) == ["a1", "a2", "a3"], form
    # --tail picks the last lines first and --since then drops the older ones (Docker).
    assert lines("--tail", "4", "--since", cut.isoformat()) == ["a1", "a2", "a3"]
    assert lines("--tail", "2", "--since", cut.isoformat()) == ["a2", "a3"]
    assert lines("--tail", "-1", "--since", "1h") == everything
    assert lines("--tail", "-1", "--since", "2999-01-01T00:00:00Z") == []
    text = service.cli("logs", "--since", cut.isoformat(), "cut")
    assert (text.returncode, text.stdout, text.stderr) == (0, "a1\na2\na3\n", "")

    assert fails(service, "logs", "--since", "yesterday", "cut") == (
        "Error: invalid --since 'yesterday': give an RFC3339 time (2024-01-02T15:04:05Z), "
        "Unix seconds, or a duration such as 10m, 1h30m or 45s"
    )
    assert fails(service, "logs", "--since=-5m", "cut") == (
        "Error: invalid --since '-5m': the duration must not be negative"
    )
    ok(service, "remove", "-f", "cut")
