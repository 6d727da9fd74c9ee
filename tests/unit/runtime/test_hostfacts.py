from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from ocirt.errors import FailedPrecondition, ImageError, InvalidArgument
from ocirt.runtime import hostfacts
from ocirt.spec.facts import UserIds


def test_bounding_set_from_a_status_file(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n")
    names = hostfacts.bounding_capabilities(str(status))
    assert "CAP_SYS_RESOURCE" not in names and "CAP_NET_ADMIN" in names
    assert len(names) == 40


def test_bounding_set_needs_the_line(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\n")
    with pytest.raises(FailedPrecondition):
        hostfacts.bounding_capabilities(str(status))
    with pytest.raises(FailedPrecondition):
        hostfacts.bounding_capabilities(str(tmp_path / "missing"))


def test_own_process_facts_match_the_kernel() -> None:
    facts = hostfacts.read_host_facts()
    own = Path("/proc/self/status").read_text()
    mask = int(next(line for line in own.splitlines() if line.startswith("CapBnd")).split()[1], 16)
    assert len(facts.capabilities) == bin(mask & (2**41 - 1)).count("1")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    expected = -1 if hard == resource.RLIM_INFINITY else hard
    assert facts.hard_rlimits["RLIMIT_NOFILE"] == expected
    assert facts.hostname and facts.devices == ()


def test_stat_device_reads_dev_null() -> None:
    dev = hostfacts.stat_device("/dev/null")
    assert (dev.type, dev.major, dev.minor, dev.file_mode) == ("c", 1, 3, 0o666)


def test_stat_device_refuses_files_and_missing_paths(tmp_path: Path) -> None:
    regular = tmp_path / "f"
    regular.write_text("")
    with pytest.raises(InvalidArgument, match="not a device"):
        hostfacts.stat_device(str(regular))
    with pytest.raises(InvalidArgument, match="No such file"):
        hostfacts.stat_device(str(tmp_path / "missing"))


def test_host_devices_lists_only_device_nodes() -> None:
    devices = hostfacts.host_devices()
    paths = [d.path for d in devices]
    assert "/dev/null" in paths
    assert paths == sorted(paths)
    assert not any(p.startswith(("/dev/pts/", "/dev/shm/")) for p in paths)
    assert all(d.type in ("c", "b") for d in devices)


def _rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\napp:x:100:101::/:/bin/sh\n")
    (root / "etc" / "group").write_text("app:x:101:\nextra:x:300:app\n")
    return root


def test_image_user_reads_the_rootfs(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    assert hostfacts.image_user(str(root), "app") == UserIds(100, 101, (300,))


def test_image_user_stays_inside_the_rootfs(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    outside = tmp_path / "host-passwd"
    outside.write_text("evil:x:0:0::/:/bin/sh\n")
    os.remove(root / "etc" / "passwd")
    # An absolute symlink is resolved inside the rootfs, where it names nothing.
    os.symlink(str(outside), root / "etc" / "passwd")
    with pytest.raises(ImageError, match="evil"):
        hostfacts.image_user(str(root), "evil")


def test_image_user_refuses_a_non_regular_file(tmp_path: Path) -> None:
    root = _rootfs(tmp_path)
    os.remove(root / "etc" / "passwd")
    (root / "etc" / "passwd").mkdir()
    with pytest.raises(ImageError):
        hostfacts.image_user(str(root), "app")
