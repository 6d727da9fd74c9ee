"""The only importer of the cffi module ocirt._native: typed wrappers over a few syscalls.

Does I/O (syscalls). Failures become OSError with the errno, as the os module does.
"""

from __future__ import annotations

import importlib
import os
from typing import Protocol, cast

# Flags from <linux/openat2.h> and <sys/mount.h>; stable kernel ABI.
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20

MNT_FORCE = 1
MNT_DETACH = 2


class _Lib(Protocol):
    def ocirt_mount(
        self, source: bytes, target: bytes, fstype: bytes, flags: int, data: bytes
    ) -> int: ...
    def ocirt_umount2(self, target: bytes, flags: int) -> int: ...
    def ocirt_openat2(
        self, dirfd: int, path: bytes, flags: int, mode: int, resolve: int
    ) -> int: ...
    def ocirt_setns(self, fd: int, nstype: int) -> int: ...
    def ocirt_unshare(self, flags: int) -> int: ...


def _lib() -> _Lib:
    # Imported on first use: the cffi module is only needed by the effectful edges.
    module = importlib.import_module("ocirt._native")
    return cast(_Lib, module.lib)


def _check(rc: int, what: str, path: str | None = None) -> int:
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}", path)
    return rc


def mount(source: str, target: str, fstype: str = "", flags: int = 0, data: str = "") -> None:
    """mount(2). Empty strings are passed as empty, which the kernel accepts for binds."""
    rc = _lib().ocirt_mount(
        os.fsencode(source), os.fsencode(target), os.fsencode(fstype), flags, os.fsencode(data)
    )
    _check(rc, "mount", target)


def umount(target: str, flags: int = 0) -> None:
    _check(_lib().ocirt_umount2(os.fsencode(target), flags), "umount2", target)


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    """openat2(2); with RESOLVE_IN_ROOT the kernel keeps every step, symlinks included,
    inside dirfd. Returns a new file descriptor."""
    return _check(
        _lib().ocirt_openat2(dirfd, os.fsencode(path), flags, mode, resolve), "openat2", path
    )


def setns(fd: int, nstype: int = 0) -> None:
    _check(_lib().ocirt_setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_lib().ocirt_unshare(flags), "unshare")
