"""kanto-cm's habits against a real daemon (issue 13, item 4): -n/--name, Kanto's texts and
exit codes, its list table, Go durations and the daemon's default stop timeout, id
prefixes, get --kanto, create -f --start, global options through the installed `ocirt`
script, and a reader that goes away (`ocirt get X | head -1`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_harness import IMAGE, WAIT, Service

pytestmark = pytest.mark.integration

# The console script pip installed next to this interpreter: what a user runs.
OCIRT = Path(sys.executable).parent / "ocirt"

# Writes /out/graceful when SIGTERM is handled: proof that a grace period was given. The
# trap runs once the running `sleep 1` ends, so an immediate SIGKILL always comes first.
GRACEFUL = [
    "sh",
    "-c",
    "trap 'echo yes > /out/graceful; exit 0' TERM; while :; do sleep 1; done",
]


def run(service: Service, *argv: str) -> tuple[int, str, str]:
    done = service.cli(*argv)
    return done.returncode, done.stdout, done.stderr


def ok(service: Service, *argv: str) -> str:
    code, out, err = run(service, *argv)
    assert (code, err) == (0, ""), (argv, err)
    return out


def status_of(service: Service, name: str) -> dict[str, object]:
    state: dict[str, object] = json.loads(ok(service, "get", "-n", name))["state"]
    return state


def wait_running(service: Service, name: str) -> None:
    deadline = time.monotonic() + WAIT
    while status_of(service, name)["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_kanto_cm_session(service: Service) -> None:
    service.start()
    assert run(service, "list") == (0, "No containers found.\n", "")
    cid = ok(service, "create", "-n", "web", "--network", "host", IMAGE, "sleep", "300").strip()

    # kanto-cm's table: Go's tabwriter with '|' after each column (see the unit test).
    table = ok(service, "list")
    assert table.split("\n")[3] == (
        f"{cid} \t|web{' ' * 34}\t|{IMAGE.ljust(60)}\t|Created   \t|{' ' * 32}|0{' ' * 9}\t|"
    )
    assert table.startswith("\nID ") and table.endswith("\t|\n\n")

    assert run(service, "start", "-n", "nope") == (
        1,
        "",
        "Error: The requested container with name = nope was not found. Try using an ID instead.\n",
    )
    assert run(service, "start", "0000") == (
        1,
        "",
        "Error: The requested container with ID = 0000 was not found.\n",
    )
    assert run(service, "stop") == (
        1,
        "",
        "Error: You must provide either an ID or a name for the container via --name (-n) \n",
    )
    assert run(service, "stop", "-n", "web", cid)[2] == (
        "Error: Container ID and --name (-n) cannot be provided at the same time - use only "
        "one of them\n"
    )

    ok(service, "start", "-n", "web")
    # A unique prefix of the id names the container, as with Docker.
    assert json.loads(ok(service, "get", cid[:6]))["state"]["status"] == "RUNNING"
    kanto = json.loads(ok(service, "get", "--kanto", "-n", "web"))
    assert (kanto["container_id"], kanto["container_name"], kanto["image"]["name"]) == (
        cid,
        "web",
        IMAGE,
    )
    assert (kanto["state"]["status"], kanto["state"]["running"]) == (2, True)
    assert kanto["host_config"]["network_mode"] == "host"

    assert run(service, "stop", "-t", "soon", "-n", "web") == (
        1,
        "",
        'Error: time: invalid duration "soon"\n',
    )
    ok(service, "stop", "-t", "1m15s", "-n", "web")
    assert status_of(service, "web")["status"] == "STOPPED"
    assert ok(service, "list", "-q") == f"{cid}\n"
    assert ok(service, "list", "-q", "--filter", "status=Stopped") == f"{cid}\n"
    ok(service, "remove", "-n", "web")
    assert run(service, "list") == (0, "No containers found.\n", "")


def test_stop_without_a_time_takes_the_daemons_default(service: Service, tmp_path: Path) -> None:
    # default_ctrs_stop_timeout 0s: SIGKILL right after SIGTERM. The CLI used to send its
    # own 30 s, which let the trap write its file.
    service.extra_config = {"manager": {"default_ctrs_stop_timeout": "0s"}}
    service.start()
    for name in ("killed", "graceful"):
        (tmp_path / name).mkdir()
        ok(service, "create", "-n", name, "--network", "host",
           "--mp", f"{tmp_path / name}:/out", IMAGE, *GRACEFUL)  # fmt: skip
        ok(service, "start", "-n", name)
        wait_running(service, name)
    ok(service, "stop", "-n", "killed")
    ok(service, "stop", "-t", "20s", "-n", "graceful")
    assert not (tmp_path / "killed" / "graceful").exists()
    assert (tmp_path / "graceful" / "graceful").read_text() == "yes\n"
    assert status_of(service, "graceful").get("exitCode", 0) == 0
    assert status_of(service, "killed")["exitCode"] == 137


def test_forced_remove_with_a_grace_period(service: Service, tmp_path: Path) -> None:
    service.start()
    for name in ("killed", "graceful"):
        (tmp_path / name).mkdir()
        ok(service, "create", "-n", name, "--network", "host",
           "--mp", f"{tmp_path / name}:/out", IMAGE, *GRACEFUL)  # fmt: skip
        ok(service, "start", "-n", name)
        wait_running(service, name)
    assert run(service, "remove", "-t", "10s", "-n", "graceful") == (
        1,
        "",
        "Error: -t/--time applies to a forced remove only: add -f\n",
    )
    ok(service, "remove", "-f", "-n", "killed")
    ok(service, "remove", "-f", "-t", "20s", "-n", "graceful")
    assert not (tmp_path / "killed" / "graceful").exists()
    assert (tmp_path / "graceful" / "graceful").read_text() == "yes\n"
    assert ok(service, "list", "-q") == ""


def test_create_from_a_file_starts_it_or_refuses(service: Service, tmp_path: Path) -> None:
    service.start()
    descriptor = tmp_path / "ctr.json"
    descriptor.write_text(json.dumps({
        "container_name": "fromfile",
        "image": {"name": IMAGE},
        "config": {"cmd": ["sleep", "300"]},
        "host_config": {"network_mode": "host"},
    }))  # fmt: skip
    assert run(service, "create", "-f", str(descriptor), "--privileged") == (
        1,
        "",
        "Error: no other flags are expected when creating a container from file\n",
    )
    assert run(service, "create", "-f", str(descriptor), IMAGE) == (
        1,
        "",
        "Error: no arguments are expected when creating a container from file\n",
    )
    assert ok(service, "list", "-q") == ""
    cid = ok(service, "create", "-f", str(descriptor), "--start").strip()
    view = json.loads(ok(service, "get", cid))
    assert (view["name"], view["state"]["status"]) == ("fromfile", "RUNNING")
    ok(service, "remove", "-f", cid)


def script(*argv: str, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OCIRT), *argv], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120
    )


def test_the_installed_script_global_options_and_a_closed_pipe(service: Service) -> None:
    service.start()
    version = script("--version")
    assert (version.returncode, version.stdout, version.stderr) == (0, "ocirt version 0.1.0\n", "")
    assert script("list").stderr.startswith(
        "Error: cannot reach the ocirt daemon at /var/run/container-management/ocirt.sock"
    )
    cid = script("--host", str(service.socket), "create", "-n", "web", IMAGE).stdout.strip()
    listed = script(f"--host=unix://{service.socket}", "--timeout", "10s", "list", "-q")
    assert (listed.returncode, listed.stdout) == (0, f"{cid}\n")

    # `ocirt get web | head -1` where head is gone before ocirt writes: no traceback, and
    # 141 (128 + SIGPIPE) as a shell reports for Docker's CLI.
    for argv in (["get", "web"], ["list"], ["get", "--kanto", cid[:8]]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = script("--host", str(service.socket), *argv, stdout=write_end)
        finally:
            os.close(write_end)
        assert (done.returncode, done.stderr) == (141, ""), argv

    # A real `ocirt logs -f | head -1`: 20000 lines (~220 kB) do not fit in a pipe, so
    # ocirt is still writing when head has gone.
    chatty = "i=0; while [ $i -lt 20000 ]; do echo line $i; i=$((i+1)); done; sleep 300"
    ok(service, "create", "-n", "chatty", "--network", "host", IMAGE, "sh", "-c", chatty)
    ok(service, "start", "-n", "chatty")
    logs = subprocess.Popen(
        [str(OCIRT), "--host", str(service.socket), "logs", "-f", "--tail", "-1", "-n", "chatty"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert logs.stdout is not None and logs.stderr is not None
    head = subprocess.Popen(["head", "-1"], stdin=logs.stdout, stdout=subprocess.PIPE)
    logs.stdout.close()
    first, _ = head.communicate(timeout=120)
    assert first == b"line 0\n"
    assert logs.wait(120) == 141
    assert logs.stderr.read() == b""
    logs.stderr.close()
    ok(service, "remove", "-f", "-n", "chatty")
    ok(service, "remove", "-f", cid)
