"""Reads a container's figures from cgroupfs (v1 or v2) and /proc. Does I/O (files only).

No process is forked per tick (Kanto asks containerd, which reads the same files). The
container's cgroup is never built by hand: it is where /proc/<pid>/cgroup says its init
process is, under the mount points of /proc/self/mountinfo, because a relative
cgroupsPath nests below whatever cgroup the manager ran in (reference §6).

A host where a v1 hierarchy carries the memory controller (v1 or hybrid) is read as v1;
otherwise the cgroup2 mount is read. Files read, per group:

    group   v1                                         v2
    cpu     cpuacct/cpuacct.usage (ns)                 cpu.stat usage_usec
    memory  memory.usage_in_bytes, .limit_in_bytes,    memory.current, memory.max,
            memory.stat total_inactive_file            memory.stat inactive_file
    io      blkio.io_service_bytes_recursive, else     io.stat rbytes/wbytes
            its bfq., else its throttle. variant
    pids    pids/pids.current                          pids.current
    net     /proc/<pid>/net/dev: the interfaces of the container's network namespace,
            seen without entering it; left out when that is the daemon's own namespace

The parsers are module functions over text, so they are tested without a cgroup tree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from ocirt.metrics.formulas import Counters, Memory, Sample


class Group(Enum):
    """What a measurement needs read."""

    CPU = "cpu"
    MEMORY = "memory"
    IO = "io"
    NET = "net"
    PIDS = "pids"


ALL_GROUPS = frozenset(Group)


def groups_for(measurement_ids: Collection[str]) -> frozenset[Group]:
    """The groups to read for these measurement ids (`cpu.utilization` -> CPU, ...)."""
    return frozenset(Group(m.split(".", 1)[0]) for m in measurement_ids)


class SampleSource(Protocol):
    """The port the collector reads through (a fake tree in unit tests)."""

    def sample(self, pid: int, groups: Collection[Group]) -> Sample | None: ...

    def system_cpu_ns(self) -> int: ...

    def host_memory(self) -> int: ...

    def cpu_count(self) -> int: ...


# ---- parsers (pure) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgroupMount:
    root: str  # the cgroup path mounted at `point` ("/" outside a cgroup namespace)
    point: str
    version: int
    controllers: frozenset[str]


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup (v1) and cgroup2 mounts of a /proc/<pid>/mountinfo."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if dash < 5 or len(fields) < dash + 4:
            continue
        fstype = fields[dash + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        version = 2 if fstype == "cgroup2" else 1
        options = frozenset(fields[dash + 3].split(",")) if version == 1 else frozenset()
        mounts.append(CgroupMount(_unescape(fields[3]), _unescape(fields[4]), version, options))
    return mounts


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/<pid>/cgroup as {controller: path}; the v2 entry is under ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        hierarchy, sep, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not sep or not sep2 or not hierarchy.isdigit():
            continue
        if hierarchy == "0" and not controllers:
            paths[""] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def stat_value(text: str, key: str) -> int | None:
    """One `key value` line of memory.stat or cpu.stat, found without parsing the rest."""
    line = f"\n{key} "
    start = text.find(line[1:]) if text.startswith(line[1:]) else text.find(line)
    if start < 0:
        return None
    start = text.index(" ", start + 1) + 1
    end = text.find("\n", start)
    return int(text[start : end if end >= 0 else len(text)])


def parse_blkio(text: str) -> Counters | None:
    """A v1 blkio.*io_service_bytes_recursive file; None when it lists no device."""
    read = written = 0
    devices = False
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue  # the closing "Total <n>" line
        devices = True
        if fields[1] == "Read":
            read += int(fields[2])
        elif fields[1] == "Write":
            written += int(fields[2])
    return Counters(read, written) if devices else None


def parse_io_stat(text: str) -> Counters:
    """v2 io.stat: `<maj:min> rbytes=.. wbytes=.. rios=..` per device."""
    read = written = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                written += int(value)
    return Counters(read, written)


def parse_net_dev(text: str) -> Counters:
    """/proc/<pid>/net/dev summed over every interface but loopback (Kanto counts the
    container's endpoint interfaces, not lo)."""
    read = written = 0
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        if not sep or name.strip() == "lo":
            continue
        fields = rest.split()
        if len(fields) >= 9:
            read += int(fields[0])
            written += int(fields[8])
    return Counters(read, written)


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(machine CPU time in clock ticks, number of CPUs) from /proc/stat: Kanto's sum of
    user, nice, system, idle, iowait, irq, softirq and steal of the `cpu` line."""
    total = 0
    cpus = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            total = sum(int(v) for v in line.split()[1:9])
        elif line.startswith("cpu"):
            cpus += 1
        elif total:
            break
    return total, max(cpus, 1)


def parse_meminfo_total(text: str) -> int:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no MemTotal in meminfo")


def _limit(text: str) -> int | None:
    value = text.strip()
    return None if value == "max" else int(value)


# ---- the reader ------------------------------------------------------------------------

_BLKIO_FILES = (
    "blkio.io_service_bytes_recursive",
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes_recursive",
)
# A cgroup directory per (pid, controller) is remembered; a pid no longer seen is dropped
# once this many are known.
_CACHE_LIMIT = 512


_EMPTY = Sample()


def _missing_ok() -> contextlib.suppress:
    return contextlib.suppress(FileNotFoundError)


def _read(path: str) -> str:
    # os.open/os.read: a third of open()'s cost, and these files are read every tick.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 65536)]
        while len(chunks[-1]) == 65536:
            chunks.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


class CgroupReader:
    """The real SampleSource. `proc` is /proc (a fake tree in tests)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = str(proc)
        mounts = parse_mountinfo(_read(f"{self._proc}/self/mountinfo"))
        v1 = [m for m in mounts if m.version == 1 and "memory" in m.controllers]
        self.version = 1 if v1 else 2
        self._mounts = [m for m in mounts if m.version == self.version]
        if not self._mounts:
            raise OSError("no cgroup filesystem is mounted")
        self._ticks = os.sysconf("SC_CLK_TCK")
        self._memory_total = parse_meminfo_total(_read(f"{self._proc}/meminfo"))
        self._dirs: dict[int, dict[str, str]] = {}
        self._shares_netns: dict[int, bool] = {}
        self._blkio_files: list[str] | None = None
        own = os.stat(f"{self._proc}/self/ns/net")
        self._own_netns = (own.st_dev, own.st_ino)

    # ---- host -------------------------------------------------------------------------

    def system_cpu_ns(self) -> int:
        ticks, _ = parse_proc_stat(_read(f"{self._proc}/stat"))
        return ticks * 1_000_000_000 // self._ticks

    def cpu_count(self) -> int:
        return parse_proc_stat(_read(f"{self._proc}/stat"))[1]

    def host_memory(self) -> int:
        return self._memory_total

    # ---- containers -------------------------------------------------------------------

    def _mount_for(self, controller: str) -> CgroupMount | None:
        for mount in self._mounts:
            if self.version == 2 or controller in mount.controllers:
                return mount
        return None

    def _resolve(self, pid: int) -> dict[str, str]:
        """{controller: cgroup directory} of one process ("" on v2)."""
        paths = parse_proc_cgroup(_read(f"{self._proc}/{pid}/cgroup"))
        wanted = ("",) if self.version == 2 else ("cpuacct", "memory", "blkio", "pids")
        dirs = {}
        for controller in wanted:
            path = paths.get(controller)
            mount = self._mount_for(controller)
            if path is None or mount is None:
                continue
            root = mount.root.rstrip("/")
            if root and (path == root or path.startswith(root + "/")):
                path = path[len(root) :]
            dirs[controller] = mount.point.rstrip("/") + path.rstrip("/")
        return dirs

    def _dirs_of(self, pid: int) -> dict[str, str]:
        dirs = self._dirs.get(pid)
        if dirs is None:
            if len(self._dirs) >= _CACHE_LIMIT:
                self._dirs.clear()
                self._shares_netns.clear()
            dirs = self._dirs[pid] = self._resolve(pid)
        return dirs

    def sample(self, pid: int, groups: Collection[Group]) -> Sample | None:
        """The figures of the container whose init process is `pid`; None when that
        process or its cgroup is gone. A file that is missing (a controller the cgroup
        does not have) leaves its figure unset."""
        cached = pid in self._dirs
        try:
            sample = self._sample(pid, groups, self._dirs_of(pid))
            if sample == _EMPTY and cached:
                # Nothing read through a remembered directory: the pid may be reused.
                self._forget(pid)
                sample = self._sample(pid, groups, self._dirs_of(pid))
        except (OSError, ValueError, KeyError):
            self._forget(pid)
            return None
        return None if sample == _EMPTY else sample

    def _forget(self, pid: int) -> None:
        self._dirs.pop(pid, None)
        self._shares_netns.pop(pid, None)

    def _sample(self, pid: int, groups: Collection[Group], dirs: dict[str, str]) -> Sample:
        cpu = memory = io = pids = net = None
        v2 = dirs.get("") if self.version == 2 else None
        cpu_dir = v2 or dirs.get("cpuacct")
        if Group.CPU in groups and cpu_dir:
            with _missing_ok():
                if v2:
                    usec = stat_value(_read(f"{v2}/cpu.stat"), "usage_usec")
                    cpu = None if usec is None else usec * 1000
                else:
                    cpu = int(_read(f"{cpu_dir}/cpuacct.usage"))
        memory_dir = v2 or dirs.get("memory")
        if Group.MEMORY in groups and memory_dir:
            with _missing_ok():
                memory = _memory(memory_dir, v2 is not None)
        io_dir = v2 or dirs.get("blkio")
        if Group.IO in groups and io_dir:
            with _missing_ok():
                io = parse_io_stat(_read(f"{v2}/io.stat")) if v2 else self._blkio(io_dir)
        pids_dir = v2 or dirs.get("pids")
        if Group.PIDS in groups and pids_dir:
            with _missing_ok():
                pids = int(_read(f"{pids_dir}/pids.current"))
        if Group.NET in groups:
            with _missing_ok():
                net = self._net(pid)
        return Sample(cpu, memory, io, net, pids)

    def _net(self, pid: int) -> Counters | None:
        shared = self._shares_netns.get(pid)
        if shared is None:
            ns = os.stat(f"{self._proc}/{pid}/ns/net")
            shared = self._shares_netns[pid] = (ns.st_dev, ns.st_ino) == self._own_netns
        if shared:
            return None  # host network mode: the host's figures are not the container's
        return parse_net_dev(_read(f"{self._proc}/{pid}/net/dev"))

    def _blkio(self, base: str) -> Counters:
        # Kernels keep only some of these up to date, depending on the I/O scheduler and
        # on whether the cgroup has a throttle rule: the first that lists a device counts.
        # Which of them exist is the kernel's choice, the same for every cgroup.
        if self._blkio_files is None:
            self._blkio_files = [n for n in _BLKIO_FILES if os.path.exists(f"{base}/{n}")]
        for name in self._blkio_files:
            counters = parse_blkio(_read(f"{base}/{name}"))
            if counters is not None:
                return counters
        return Counters(0, 0)


def _memory(base: str, v2: bool) -> Memory:
    stat = _read(f"{base}/memory.stat")
    if v2:
        usage = int(_read(f"{base}/memory.current"))
        inactive = stat_value(stat, "inactive_file") or 0
        return Memory(usage, inactive, _limit(_read(f"{base}/memory.max")))
    return Memory(
        int(_read(f"{base}/memory.usage_in_bytes")),
        stat_value(stat, "total_inactive_file") or 0,
        _limit(_read(f"{base}/memory.limit_in_bytes")),
    )
