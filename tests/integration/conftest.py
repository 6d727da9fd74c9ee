"""Fixtures shared by the integration suites: a busybox rootfs and a private runc root."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine busybox rootfs (built by hack/mkrootfs.sh). Copy it before writing to it."""
    dest = tmp_path_factory.mktemp("busybox") / "rootfs"
    subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(dest)], check=True)
    return dest


@pytest.fixture
def rootfs_copy(busybox_rootfs: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the busybox rootfs for one test."""
    dest = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, dest, symlinks=True)
    return dest


@pytest.fixture
def runc_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private runc --root; every container left in it is force-deleted at teardown."""
    root = Path("/run") / f"ocirt-test-{uuid.uuid4().hex[:10]}" / "runc"
    root.mkdir(parents=True)
    try:
        yield root
    finally:
        listed = subprocess.run(
            ["runc", "--root", str(root), "list", "-f", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        for state in json.loads(listed.stdout or "null") or []:
            subprocess.run(
                ["runc", "--root", str(root), "delete", "-f", state["id"]],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(root.parent, ignore_errors=True)


def _cgroup_mounts() -> list[Path]:
    mounts = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                mounts.append(Path(fields[4]))
    return mounts


def remove_cgroup_dirs(name: str) -> None:
    """Remove every (empty) cgroup directory called `name`, in every hierarchy."""
    for mount in _cgroup_mounts():
        for dirpath, dirnames, _ in os.walk(mount, topdown=False):
            for dirname in dirnames:
                if dirname == name:
                    with contextlib.suppress(OSError):
                        os.rmdir(Path(dirpath) / dirname)


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    """A unique cgroup parent for a test's containers, removed in every hierarchy after."""
    name = f"ocirt-test-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        remove_cgroup_dirs(name)
