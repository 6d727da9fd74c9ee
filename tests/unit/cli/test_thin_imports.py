"""The common commands stay thin (issue 17): run in a fresh interpreter against a socket
that answers as the daemon does, they import no ocirt package outside ocirt.cli and none
of the stdlib modules that the old CLI dragged in (typing, dataclasses, socket's enums,
shutil via argparse's help formatter, argparse itself)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CONTAINER = {
    "id": "0b5c4c2e-0000-4000-8000-000000000001",
    "name": "web",
    "imageRef": "busybox:latest",
    "config": {},
    "createdAt": "2026-01-01T00:00:00Z",
    "state": {"status": "RUNNING", "pid": 42},
    "restartCount": 0,
}

# What a request's process imports, printed by the probe after the command ran.
PROBE = """
import sys
before = set(sys.modules)
from ocirt.cli.main import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("\\n".join(sorted(set(sys.modules) - before)), file=sys.stderr)
sys.exit(code)
"""

FORBIDDEN = {
    "typing",
    "dataclasses",
    "socket",
    "selectors",
    "shutil",
    "datetime",
    "pathlib",
    "ocirt.errors",
}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Path]:
    """A unix socket answering each request as the daemon would, for CONTAINER."""
    path = tmp_path / "ocirt.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                op = json.loads(reader.readline())["op"]
                if op == "logs":
                    conn.sendall(b'{"log": {"stream": "stdout", "log": "hi\\n"}}\n{"ok": true}\n')
                    continue
                result = [CONTAINER] if op == "list" else CONTAINER
                conn.sendall(json.dumps({"ok": True, "result": result}).encode() + b"\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        server.close()
        thread.join(5)


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["get", "web"],
        ["start", "web"],
        ["stop", "-t", "10s", "web"],
        ["logs", "web"],
        ["create", "-n", "web", "--e", "A=1", "--ports", "80:80", "busybox", "sleep", "9"],
    ],
)
def test_a_common_command_imports_only_what_it_needs(daemon: Path, argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "--host", str(daemon), *argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    imported = set(done.stderr.split())
    ocirt = {name for name in imported if name.split(".")[0] == "ocirt"}
    assert ocirt <= {
        "ocirt",
        "ocirt.cli",
        "ocirt.cli.main",
        "ocirt.cli.common",
        "ocirt.cli.client",
        "ocirt.cli.fastargs",
        "ocirt.cli.errors",
        f"ocirt.cli.{argv[0]}_cmd",
    }, ocirt
    assert "ocirt.cli.client" in ocirt  # the probe saw the whole request
    assert not imported & FORBIDDEN, imported & FORBIDDEN
    # argparse (with gettext and locale) only for create, whose command takes the rest of
    # the line; the everyday commands go through ocirt.cli.fastargs.
    assert ("argparse" in imported) == (argv[0] == "create")
    # The json package (which imports re and compiles its patterns) only to print JSON.
    assert ("json" in imported) == (argv[0] == "get")
