"""Other local users (issue 12 item 9): a container's definition and spec hold secrets
(env, decryption key paths), so the home dir, each container's dir, `config.json`,
`bundle/config.json`, the image records and the exec root (with the API socket) are
root's alone; a real unprivileged user cannot read them, also after an older install
left them open."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_harness import IMAGE, Cloud, Service, state_updates

pytestmark = pytest.mark.integration

SECRET = "PASSWORD=hunter2-" + uuid.uuid4().hex[:6]
SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


@pytest.fixture
def stranger() -> Iterator[str]:
    """A real unprivileged user, deleted afterwards."""
    name = f"ocx{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def as_user(user: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", user, "--", *argv], capture_output=True, text=True, timeout=30
    )


CONNECT = "import socket,sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])"


def secrets(service: Service, cid: str) -> tuple[list[Path], list[Path]]:
    home = service.home
    records = sorted((home / "images" / "records").glob("*.json"))
    assert records, "the loaded image has a record"
    files = [
        home / "containers" / cid / "config.json",
        home / "containers" / cid / "bundle" / "config.json",
        *records,
    ]
    dirs = [
        home,
        home / "containers",
        home / "containers" / cid,
        records[0].parent,
        service.exec_root,
    ]
    return files, dirs


def assert_closed(service: Service, cid: str, user: str) -> None:
    files, dirs = secrets(service, cid)
    for path in files:
        st = path.lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0), path
        got = as_user(user, "cat", str(path))
        assert got.returncode != 0 and "Permission denied" in got.stderr, path
        assert "hunter2" not in got.stdout
    for path in dirs:
        st = path.lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, 0), path
        got = as_user(user, "ls", str(path))
        assert got.returncode != 0 and "Permission denied" in got.stderr, path
    got = as_user(user, sys.executable, "-c", CONNECT, str(service.socket))
    assert got.returncode != 0 and "PermissionError" in got.stderr
    # root still reaches the daemon.
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(service.socket))


def test_secrets_are_roots_alone_also_after_an_older_install(
    service: Service, cloud: Cloud, stranger: str
) -> None:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    value = {"imageRef": IMAGE, "name": "secretive", "start": True,
             "config": {"cmd": SERVE, "env": [SECRET]}}  # fmt: skip
    got = cloud.call("createWithConfig", "ContainerFactory", value)
    assert got.body["status"] == 200, got.body
    cid: str = got.body["value"]
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: "RUNNING" in state_updates(t, cid))
    spec = service.home / "containers" / cid / "bundle" / "config.json"
    assert "hunter2" in spec.read_text()
    assert_closed(service, cid, stranger)

    # An older install: everything readable by all, some of it even the user's own.
    assert service.stop() == 0
    files, dirs = secrets(service, cid)
    for path in dirs:
        path.chmod(0o755)
    for path in files:
        path.chmod(0o644)
    os.chown(service.home / "containers" / cid, *_ids(stranger))
    got = as_user(stranger, "cat", str(files[0]))
    assert got.returncode == 0 and "hunter2" in got.stdout  # the test can see a leak
    (service.exec_root / "ocirt.sock").unlink(missing_ok=True)
    service.start()
    # The local API answers list/get before the daemon is built (daemon/early.py);
    # sysinfo waits for the built daemon, which has taken its files back by then.
    assert service.cli("sysinfo").returncode == 0
    assert_closed(service, cid, stranger)
    assert in_running(service, cid)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def in_running(service: Service, cid: str) -> bool:
    done = subprocess.run(
        ["runc", "--root", str(service.exec_root / "runc"), "state", cid],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return '"running"' in done.stdout
