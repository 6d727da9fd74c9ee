"""Read the facts the spec builder needs from the running host. Does I/O.

Reads the manager's capability bounding set (/proc/self/status), its hard rlimits,
its hostname, device nodes (stat, and a walk of /dev for privileged containers), and
an image's user from the rootfs's /etc/passwd and /etc/group, opened with
RESOLVE_IN_ROOT so a hostile image cannot point them at host files. Every failure
becomes an `ocirt.errors` class here.
"""

from __future__ import annotations

import os
import resource
import socket
import stat
from pathlib import Path

from ocirt.errors import FailedPrecondition, ImageError, InvalidArgument
from ocirt.spec import capabilities as caps
from ocirt.spec.facts import HostDevice, HostFacts, UserIds
from ocirt.spec.user import resolve_user

# The limits the builder may set; others are left as the manager's own.
_RLIMITS = {
    "RLIMIT_NOFILE": resource.RLIMIT_NOFILE,
    "RLIMIT_NPROC": resource.RLIMIT_NPROC,
}

# Not devices of the host proper: runc mounts its own pts, shm and mqueue (runc
# libcontainer/devices HostDevices skips the same directories).
_SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})

_MAX_ETC_FILE = 4 * 1024 * 1024


def bounding_capabilities(status_path: str = "/proc/self/status") -> tuple[str, ...]:
    try:
        text = Path(status_path).read_text()
    except OSError as exc:
        raise FailedPrecondition(f"cannot read {status_path}: {exc.strerror}") from exc
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "CapBnd":
            return caps.from_mask(caps.parse_mask(value))
    raise FailedPrecondition(f"no CapBnd line in {status_path}")


def hard_rlimits() -> dict[str, int]:
    """Hard limits by name; RLIM_INFINITY is reported as -1 (no ceiling)."""
    out = {}
    for name, which in _RLIMITS.items():
        _, hard = resource.getrlimit(which)
        out[name] = -1 if hard == resource.RLIM_INFINITY else hard
    return out


def stat_device(path: str) -> HostDevice:
    """The device node at `path` (symlinks followed, as Docker does)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(
            f"error gathering device information while adding custom device {path!r}: "
            f"{exc.strerror}"
        ) from exc
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise InvalidArgument(f"{path} is not a device node")
    return HostDevice(
        path=path,
        type=kind,
        major=os.major(st.st_rdev),
        minor=os.minor(st.st_rdev),
        file_mode=stat.S_IMODE(st.st_mode),
        uid=st.st_uid,
        gid=st.st_gid,
    )


def host_devices(dev_root: str = "/dev") -> tuple[HostDevice, ...]:
    """Every char and block device under `dev_root`, symlinks not followed, sorted by path."""
    found: list[HostDevice] = []
    for dirpath, dirnames, filenames in os.walk(dev_root):
        if dirpath == dev_root:
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue  # vanished while walking (udev)
            if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                continue
            if st.st_rdev == 0:
                continue  # 0:0 is an overlay whiteout, not a device
            found.append(
                HostDevice(
                    path=path,
                    type="c" if stat.S_ISCHR(st.st_mode) else "b",
                    major=os.major(st.st_rdev),
                    minor=os.minor(st.st_rdev),
                    file_mode=stat.S_IMODE(st.st_mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                )
            )
    return tuple(sorted(found, key=lambda d: d.path))


def read_host_facts(*, with_devices: bool = False) -> HostFacts:
    """The manager's own limits; `with_devices` walks /dev (privileged containers only)."""
    return HostFacts(
        capabilities=bounding_capabilities(),
        hard_rlimits=hard_rlimits(),
        devices=host_devices() if with_devices else (),
        hostname=socket.gethostname(),
    )


def _read_in_root(rootfs: str, path: str) -> str | None:
    from ocirt import native

    try:
        root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise ImageError(f"cannot open rootfs {rootfs}: {exc.strerror}") from exc
    try:
        fd = native.openat2(root_fd, path, os.O_RDONLY | os.O_CLOEXEC, 0, native.RESOLVE_IN_ROOT)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ImageError(f"cannot read {path} in the image: {exc.strerror}") from exc
    finally:
        os.close(root_fd)
    try:
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ImageError(f"{path} in the image is not a regular file")
            data = handle.read(_MAX_ETC_FILE + 1)
    except OSError as exc:
        raise ImageError(f"cannot read {path} in the image: {exc.strerror}") from exc
    if len(data) > _MAX_ETC_FILE:
        raise ImageError(f"{path} in the image is larger than {_MAX_ETC_FILE} bytes")
    return data.decode("utf-8", errors="replace")


def image_user(rootfs: str, user: str) -> UserIds:
    """Resolve an image's User against the rootfs, confined to it."""
    passwd = _read_in_root(rootfs, "/etc/passwd")
    group = _read_in_root(rootfs, "/etc/group")
    return resolve_user(user, passwd, group)
