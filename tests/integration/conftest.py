"""Fixtures shared by the integration suites: a busybox rootfs and a private runc root."""

from __future__ import annotations

import json
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
