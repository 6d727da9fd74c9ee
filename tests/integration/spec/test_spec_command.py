"""`ocirt spec` on the createWithConfig example of Kanto's ContainerFactory API doc, run by runc.

The example's blanks are filled with real paths made here, /dev/null as the device and a
network namespace of our own; the printed config.json is run unchanged in its bundle
directory (<meta-path>/containers/<id>) with a busybox rootfs put there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CHECKS = (
    'set -e; [ "$(hostname)" = ex-host ]; '
    '[ "$(cat /proc/sys/kernel/domainname)" = ex-domain ]; '
    "[ -c /dev/mynull ]; echo data > /dev/mynull; "
    "grep -q from-host /data/marker; "
    "grep -q ctrhost /etc/hosts; "
    "grep -q ' /data ' /proc/self/mountinfo; "
    "echo all-checks-passed"
)


def example_value(source: Path) -> dict[str, Any]:
    """The document's example value, blanks filled; everything else as written there."""
    return {
        "imageRef": "docker.io/library/influxdb:1.8.4",
        "start": True,
        "config": {
            "domainName": "ex-domain",
            "hostName": "ex-host",
            "env": [],
            "cmd": [],
            "privileged": False,
            "extraHosts": ["ctrhost:host_ip"],
            "extraCapabilities": [],
            "networkMode": "bridge",
            "openStdin": False,
            "tty": False,
            "mountPoints": [
                {"source": str(source), "destination": "/data", "propagationMode": "rprivate"}
            ],
            "decryption": {"keys": [], "recipients": []},
            "devices": [
                {
                    "pathOnHost": "/dev/null",
                    "pathInContainer": "/dev/mynull",
                    "cgroupPermissions": "rwm",
                }
            ],
            "restartPolicy": {"type": "unless-stopped", "maxRetryCount": 0, "retryTimeout": 0},
            "portMappings": [
                {
                    "proto": "tcp",
                    "containerPort": 80,
                    "hostIP": "0.0.0.0",
                    "hostPort": 5000,
                    "hostPortEnd": 5005,
                }
            ],
            "log": {
                "type": "json-file",
                "maxFiles": 2,
                "maxSize": "100M",
                "rootDir": "",
                "mode": "blocking",
                "maxBufferSize": "1M",
            },
            "resources": {"memory": "", "memoryReservation": "", "memorySwap": ""},
        },
    }


def _own_cgroup_dirs() -> list[Path]:
    """This process's cgroup directory in every mounted hierarchy (v1 and v2)."""
    mounts: list[tuple[str, str, str, set[str]]] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if tail[0] in ("cgroup", "cgroup2"):
            mounts.append((tail[0], fields[3], fields[4], set(tail[-1].split(","))))
    dirs = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        wanted = set(controllers.split(",")) if controllers else set()
        for fstype, root, mount_point, options in mounts:
            if (fstype == "cgroup2" and not wanted) or (wanted and wanted <= options):
                dirs.append(Path(mount_point) / os.path.relpath(path, root))
                break
    return dirs


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"ocirt-e-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/var/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def ocirt_cgroup_parent() -> Iterator[None]:
    """The spec's relative cgroupsPath ocirt/<id> leaves an `ocirt` parent: remove it if
    this test created it and it is empty."""
    before = {d / "ocirt" for d in _own_cgroup_dirs() if (d / "ocirt").exists()}
    try:
        yield
    finally:
        for parent in {d / "ocirt" for d in _own_cgroup_dirs()} - before:
            # Absent, or in use by a container that is not ours.
            with contextlib.suppress(OSError):
                parent.rmdir()


def test_ocirt_spec_output_runs_under_runc(
    tmp_path: Path,
    busybox_rootfs: Path,
    runc_root: Path,
    netns: str,
    ocirt_cgroup_parent: None,
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "marker").write_text("from-host\n")
    value_file = tmp_path / "create.json"
    value_file.write_text(json.dumps(example_value(source)))
    image_file = tmp_path / "image.json"
    image_file.write_text(
        json.dumps({"architecture": "amd64", "config": {"Cmd": ["/bin/sh", "-c", CHECKS]}})
    )
    container_id = uuid.uuid4().hex
    meta = tmp_path / "meta"
    printed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocirt.cli.main",
            "spec",
            str(value_file),
            "--image-config",
            str(image_file),
            "--id",
            container_id,
            "--meta-path",
            str(meta),
            "--netns",
            netns,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert printed.returncode == 0, printed.stderr
    spec = json.loads(printed.stdout)

    container_dir = meta / "containers" / container_id
    bundle = container_dir / "bundle"
    assert spec["root"]["path"] == str(bundle / "rootfs")
    bundle.mkdir(parents=True)
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    (container_dir / "hostname").write_text("ex-host\n")
    (container_dir / "hosts").write_text("127.0.0.1\tlocalhost\n10.0.0.1\tctrhost\n")
    (container_dir / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    (bundle / "config.json").write_text(printed.stdout)

    out, err = tmp_path / "out", tmp_path / "err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        ran = subprocess.run(
            ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), container_id],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            timeout=60,
            check=False,
        )
    assert ran.returncode == 0, err.read_text()
    assert out.read_text() == "all-checks-passed\n"
