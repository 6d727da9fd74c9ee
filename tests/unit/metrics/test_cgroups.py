"""The cgroupfs reader on fake v1 and v2 trees (a fake /proc and cgroup mounts in tmp)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ocirt.metrics.cgroups import (
    ALL_GROUPS,
    CgroupReader,
    Group,
    groups_for,
    parse_blkio,
    parse_io_stat,
    parse_mountinfo,
    parse_net_dev,
    parse_proc_cgroup,
    parse_proc_stat,
    stat_value,
)
from ocirt.metrics.formulas import Counters, Memory, Sample

PID = 4242
TICKS = os.sysconf("SC_CLK_TCK")
STAT = """cpu  100 20 30 800 40 5 5 0 7 0
cpu0 50 10 15 400 20 2 3 0 3 0
cpu1 50 10 15 400 20 3 2 0 4 0
intr 12345
ctxt 999
"""
# /proc/<pid>/net/dev, columns narrowed: rx bytes first, tx bytes ninth.
NET_DEV = """Inter-|   Receive                            |  Transmit
 face |bytes packets errs drop fifo frame cmp mc|bytes packets errs drop fifo colls car cmp
    lo:  900  9 0 0 0 0 0 0   900  9 0 0 0 0 0 0
  eth0: 1000 10 0 0 0 0 0 0  2000 20 0 0 0 0 0 0
  eth1:   10  1 0 0 0 0 0 0    20  2 0 0 0 0 0 0
"""
MEMINFO = "MemTotal:        8000000 kB\nMemFree:  100 kB\n"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def fake_proc(tmp: Path, mountinfo: str, proc_cgroup: str) -> Path:
    proc = tmp / "proc"
    write(proc / "self" / "mountinfo", mountinfo)
    write(proc / "stat", STAT)
    write(proc / "meminfo", MEMINFO)
    write(proc / "self" / "ns" / "net", "daemon's netns")
    write(proc / str(PID) / "ns" / "net", "container's netns")
    write(proc / str(PID) / "cgroup", proc_cgroup)
    write(proc / str(PID) / "net" / "dev", NET_DEV)
    return proc


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    """Hybrid v1 as on this project's machines: cpu and cpuacct co-mounted, a memory
    mount whose root is a cgroup namespace's, and an empty cgroup2 mount."""
    cg = tmp_path / "cg"
    mountinfo = "\n".join(
        [
            "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
            f"30 25 0:26 / {cg}/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct",
            f"31 25 0:27 /nest {cg}/mem\\040ory rw - cgroup cgroup rw,memory",
            f"32 25 0:28 / {cg}/blkio rw - cgroup cgroup rw,blkio",
            f"33 25 0:29 / {cg}/pids rw - cgroup cgroup rw,pids",
            f"34 25 0:30 / {cg}/systemd rw - cgroup cgroup rw,xattr,name=systemd",
            f"35 25 0:31 / {cg}/unified rw - cgroup2 cgroup2 rw,nsdelegate",
        ]
    )
    proc_cgroup = "\n".join(
        [
            "12:pids:/nest/ocirt/c1",
            "11:blkio:/nest/ocirt/c1",
            "10:memory:/nest/ocirt/c1",
            "9:cpu,cpuacct:/nest/ocirt/c1",
            "1:name=systemd:/elsewhere",
            "0::/",
        ]
    )
    proc = fake_proc(tmp_path, mountinfo, proc_cgroup)
    write(cg / "cpu,cpuacct/nest/ocirt/c1/cpuacct.usage", "123456789012\n")
    memory = cg / "mem ory/ocirt/c1"  # the mount's root /nest is cut off
    write(memory / "memory.usage_in_bytes", "50000000\n")
    write(memory / "memory.limit_in_bytes", "67108864\n")
    write(memory / "memory.stat", "cache 10\ninactive_file 1\ntotal_inactive_file 20000000\n")
    write(cg / "blkio/nest/ocirt/c1/blkio.io_service_bytes_recursive", "Total 0\n")
    write(
        cg / "blkio/nest/ocirt/c1/blkio.throttle.io_service_bytes_recursive",
        "254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 8192\n254:0 Total 12288\n"
        "8:0 Read 1\n8:0 Write 2\nTotal 12291\n",
    )
    write(cg / "pids/nest/ocirt/c1/pids.current", "3\n")
    return proc


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    cg = tmp_path / "cg2"
    mountinfo = f"30 25 0:26 / {cg} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    proc = fake_proc(tmp_path, mountinfo, "0::/ocirt/c1\n")
    base = cg / "ocirt" / "c1"
    write(base / "cpu.stat", "usage_usec 7000001\nuser_usec 5000000\nsystem_usec 2000001\n")
    write(base / "memory.current", "50000000\n")
    write(base / "memory.max", "max\n")
    write(base / "memory.stat", "anon 100\nfile 300\ninactive_file 20000000\n")
    write(base / "io.stat", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
                            "8:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n")  # fmt: skip
    write(base / "pids.current", "3\n")
    return proc


def test_v1_sample(v1: Path) -> None:
    reader = CgroupReader(v1)
    assert reader.version == 1
    assert reader.sample(PID, ALL_GROUPS) == Sample(
        cpu_ns=123456789012,
        memory=Memory(usage=50000000, inactive_file=20000000, limit=67108864),
        io=Counters(read=4097, written=8194),  # the throttle file: the first with devices
        net=Counters(read=1010, written=2020),  # lo left out
        pids=3,
    )


def test_v2_sample(v2: Path) -> None:
    reader = CgroupReader(v2)
    assert reader.version == 2
    assert reader.sample(PID, ALL_GROUPS) == Sample(
        cpu_ns=7000001000,
        memory=Memory(usage=50000000, inactive_file=20000000, limit=None),
        io=Counters(read=4097, written=8194),
        net=Counters(read=1010, written=2020),
        pids=3,
    )


def test_host_figures(v1: Path) -> None:
    reader = CgroupReader(v1)
    assert reader.system_cpu_ns() == (100 + 20 + 30 + 800 + 40 + 5 + 5 + 0) * 10**9 // TICKS
    assert reader.cpu_count() == 2
    assert reader.host_memory() == 8000000 * 1024


def test_only_the_groups_asked_for_are_read(v1: Path) -> None:
    reader = CgroupReader(v1)
    assert reader.sample(PID, {Group.PIDS}) == Sample(pids=3)
    assert reader.sample(PID, groups_for({"cpu.utilization", "net.readBytes"})) == Sample(
        cpu_ns=123456789012, net=Counters(1010, 2020)
    )


def test_host_network_mode_has_no_net(v1: Path) -> None:
    netns = v1 / str(PID) / "ns" / "net"
    netns.unlink()
    netns.symlink_to(v1 / "self" / "ns" / "net")
    sample = CgroupReader(v1).sample(PID, ALL_GROUPS)
    assert sample is not None and sample.net is None and sample.pids == 3


def test_a_missing_controller_file_leaves_its_figure_unset(v2: Path, tmp_path: Path) -> None:
    (tmp_path / "cg2/ocirt/c1/io.stat").unlink()
    (tmp_path / "cg2/ocirt/c1/pids.current").unlink()
    sample = CgroupReader(v2).sample(PID, ALL_GROUPS)
    assert sample is not None
    assert (sample.io, sample.pids, sample.cpu_ns) == (None, None, 7000001000)


def test_v1_blkio_falls_back_to_zero(v1: Path, tmp_path: Path) -> None:
    throttle = tmp_path / "cg/blkio/nest/ocirt/c1/blkio.throttle.io_service_bytes_recursive"
    throttle.write_text("Total 0\n")
    sample = CgroupReader(v1).sample(PID, {Group.IO})
    assert sample == Sample(io=Counters(0, 0))


def test_gone_process_gives_none(v1: Path) -> None:
    reader = CgroupReader(v1)
    assert reader.sample(PID + 1, ALL_GROUPS) is None


def test_a_reused_pid_is_resolved_again(v2: Path, tmp_path: Path) -> None:
    reader = CgroupReader(v2)
    assert reader.sample(PID, {Group.PIDS}) == Sample(pids=3)
    # The container is gone and another one's init got the same pid.
    shutil.rmtree(tmp_path / "cg2/ocirt/c1")
    write(v2 / str(PID) / "cgroup", "0::/ocirt/c2\n")
    write(tmp_path / "cg2/ocirt/c2/pids.current", "9\n")
    assert reader.sample(PID, {Group.PIDS}) == Sample(pids=9)
    shutil.rmtree(tmp_path / "cg2/ocirt/c2")
    assert reader.sample(PID, {Group.PIDS}) is None


def test_no_cgroup_mount_is_an_error(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, "22 1 254:0 / / rw - ext4 /dev/vda rw\n", "")
    with pytest.raises(OSError, match="no cgroup"):
        CgroupReader(proc)


# ---- the parsers -------------------------------------------------------------------------


def test_parse_mountinfo_skips_other_filesystems_and_unescapes() -> None:
    mounts = parse_mountinfo(
        "1 0 0:1 / /sys/fs/cgroup/a\\040b rw shared:5 - cgroup cgroup rw,memory\n"
        "2 0 0:2 / /sys rw - sysfs sysfs rw\n"
        "garbage line\n"
    )
    assert [(m.point, m.version, "memory" in m.controllers) for m in mounts] == [
        ("/sys/fs/cgroup/a b", 1, True)
    ]


def test_parse_proc_cgroup() -> None:
    assert parse_proc_cgroup("3:cpu,cpuacct:/a\n0::/b\n1:name=systemd:/c\nbad\n") == {
        "cpu": "/a",
        "cpuacct": "/a",
        "": "/b",
        "name=systemd": "/c",
    }


def test_parse_counters() -> None:
    assert parse_blkio("Total 0\n") is None
    assert parse_blkio("8:0 Read 5\n8:0 Write 6\n8:0 Total 11\nTotal 11\n") == Counters(5, 6)
    assert parse_io_stat("") == Counters(0, 0)
    assert parse_net_dev(NET_DEV) == Counters(1010, 2020)
    assert parse_proc_stat(STAT) == (1000, 2)


def test_stat_value_finds_whole_keys_only() -> None:
    text = "inactive_anon 1\ntotal_inactive_file 20\ninactive_file 3\nlast 4"
    assert stat_value(text, "inactive_file") == 3
    assert stat_value(text, "total_inactive_file") == 20
    assert stat_value(text, "inactive_anon") == 1
    assert stat_value(text, "last") == 4
    assert stat_value(text, "file") is None
