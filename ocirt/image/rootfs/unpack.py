"""Apply a layer tar stream to a directory without ever writing outside it. Does I/O.

``tarfile`` only parses headers here; every write goes through a parent directory fd
that the kernel resolved inside the root (openat2 RESOLVE_IN_ROOT, so a symlink
``etc -> /etc`` means ``<root>/etc``), and the final component is never followed.

Names: a leading ``/`` is stripped (the entry lands inside the root, as GNU tar does);
a ``..`` component is refused with UnsafeLayer: no honest layer needs one.

Two whiteout modes (image-spec layer.md §Whiteouts):
- OVERLAY: the layer gets its own directory; ``.wh.x`` becomes the overlayfs whiteout
  (char device 0:0) and ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its dir
  (containerd OverlayConvertWhiteout).
- NAIVE: the layer is applied onto the flattened lower layers; whiteouts remove what the
  lower layers put there, never what this layer itself wrote (containerd applyNaive).
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import IO

from ocirt import native
from ocirt.errors import CorruptLayer, ImageError, UnsafeLayer

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_RESOLVE = native.RESOLVE_IN_ROOT | native.RESOLVE_NO_MAGICLINKS
_COPY_CHUNK = 1 << 20
# Namespaces a layer may not set: trusted.* steers overlayfs (opaque, redirect) and only
# we write it; the others are host-specific labels (umoci drops them too).
_FORBIDDEN_XATTR_PREFIXES = ("trusted.", "user.overlay.", "security.selinux", "system.nfs4_acl")
_MAX_DEVICE_MAJOR = (1 << 12) - 1
_MAX_DEVICE_MINOR = (1 << 20) - 1


class WhiteoutMode(Enum):
    OVERLAY = "overlay"
    NAIVE = "naive"


def clean_name(name: str) -> tuple[str, ...]:
    """Split a tar member name into safe components; ``()`` is the root itself."""
    if "\x00" in name:
        raise UnsafeLayer(f"layer entry name contains NUL: {name!r}")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnsafeLayer(f"layer entry {name!r} climbs out with '..'")
    return parts


DataOpener = Callable[[], IO[bytes] | None]


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (tarfile.TarError, EOFError) as exc:
        raise CorruptLayer(f"layer is not a valid tar: {exc}") from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ImageError(f"no space left while unpacking: {exc}") from exc
        raise CorruptLayer(f"cannot apply layer entry: {exc}") from exc


@dataclass(slots=True)
class _Deferred:
    parts: tuple[str, ...]
    mtime_ns: int


class LayerApplier:
    """Applies tar members to ``root``. One instance per layer."""

    def __init__(self, root: str, mode: WhiteoutMode) -> None:
        self._root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._mode = mode
        self._as_root = os.geteuid() == 0
        self._unpacked: set[tuple[str, ...]] = set()
        self._dir_times: list[_Deferred] = []

    def close(self) -> None:
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def __enter__(self) -> LayerApplier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- public ----

    def apply(self, tar: tarfile.TarFile) -> int:
        """Apply every member of a (streaming) tar; returns the number of entries."""
        count = 0
        with _translated():
            for member in tar:
                self._apply_member(member, functools.partial(tar.extractfile, member))
                count += 1
            self._finish_dirs()
        return count

    def apply_entry(self, member: tarfile.TarInfo, data: DataOpener) -> None:
        """Apply one entry built by the caller (snapshot flattening); then ``finish()``."""
        with _translated():
            self._apply_member(member, data)

    def finish(self) -> None:
        with _translated():
            self._finish_dirs()

    # ---- path resolution ----

    def _open_dir(self, parts: tuple[str, ...], create: bool) -> int:
        """An O_PATH fd of the directory ``parts`` resolved inside the root."""
        path = "/".join(parts) or "."
        flags = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            return native.openat2(self._root_fd, path, flags, 0, _RESOLVE)
        except FileNotFoundError:
            if not create or not parts:
                raise
        # Tars may omit parent directories: make them one level at a time, each step
        # again resolved from the root.
        for i in range(1, len(parts) + 1):
            prefix = parts[:i]
            try:
                fd = native.openat2(self._root_fd, "/".join(prefix), flags, 0, _RESOLVE)
            except FileNotFoundError:
                parent = self._open_dir(prefix[:-1], create=False)
                try:
                    os.mkdir(prefix[-1], 0o755, dir_fd=parent)
                finally:
                    os.close(parent)
                continue
            os.close(fd)
        return native.openat2(self._root_fd, path, flags, 0, _RESOLVE)

    # ---- entries ----

    def _apply_member(self, member: tarfile.TarInfo, data: DataOpener) -> None:
        parts = clean_name(member.name)
        if not parts:
            if member.isdir():
                self._set_root_meta(member)
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts)
            return
        known = member.isreg() or member.isdir() or member.issym() or member.islnk()
        if not (known or member.ischr() or member.isblk() or member.isfifo()):
            return  # sockets and unknown types carry no content (tarfile skips them too)
        parent = self._open_dir(parts[:-1], create=True)
        try:
            self._create(data, member, parts, parent, base)
        finally:
            os.close(parent)
        self._unpacked.add(parts)

    def _create(
        self,
        data: DataOpener,
        member: tarfile.TarInfo,
        parts: tuple[str, ...],
        parent: int,
        base: str,
    ) -> None:
        existing = _lstat(base, parent)
        if existing is not None:
            if member.isdir() and stat.S_ISDIR(existing.st_mode):
                pass  # a directory over a directory merges
            else:
                _remove(base, parent, existing)
                existing = None
        if member.isdir():
            if existing is None:
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
            try:
                self._set_meta_fd(fd, member, times=False)
            finally:
                os.close(fd)
            self._dir_times.append(_Deferred(parts, _mtime_ns(member)))
        elif member.isreg():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(base, flags, 0o600, dir_fd=parent)
            try:
                source = data()
                if source is not None:
                    with source:
                        _copy(source, fd)
                self._set_meta_fd(fd, member, times=True)
            finally:
                os.close(fd)
        elif member.issym():
            # Symlink targets are data: stored verbatim, resolved later only in-root.
            os.symlink(member.linkname, base, dir_fd=parent)
            if self._as_root:
                os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            ns = _mtime_ns(member)
            os.utime(base, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
        elif member.islnk():
            self._hardlink(member, parent, base)
        else:
            self._special(member, parent, base)

    def _hardlink(self, member: tarfile.TarInfo, parent: int, base: str) -> None:
        target = clean_name(member.linkname)
        if not target:
            raise UnsafeLayer(f"hard link {member.name!r} to the root directory")
        missing = CorruptLayer(
            f"hard link {member.name!r} -> {member.linkname!r}: no such file in layer"
        )
        try:
            target_parent = self._open_dir(target[:-1], create=False)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise missing from exc
        try:
            st = _lstat(target[-1], target_parent)
            if st is None or stat.S_ISDIR(st.st_mode):
                raise missing
            os.link(
                target[-1],
                base,
                src_dir_fd=target_parent,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        finally:
            os.close(target_parent)

    def _special(self, member: tarfile.TarInfo, parent: int, base: str) -> None:
        perm = member.mode & 0o7777
        if member.isfifo():
            os.mkfifo(base, perm, dir_fd=parent)
        else:
            if member.devmajor > _MAX_DEVICE_MAJOR or member.devminor > _MAX_DEVICE_MINOR:
                raise CorruptLayer(f"device {member.name!r} has an out-of-range number")
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            try:
                os.mknod(
                    base, kind | perm, os.makedev(member.devmajor, member.devminor), dir_fd=parent
                )
            except PermissionError:
                if self._as_root:
                    raise
                return  # unprivileged (tests, user namespaces): devices are skipped
        fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        try:
            if self._as_root:
                os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            self._set_xattrs(f"/proc/self/fd/{fd}", member)
            os.chmod(base, perm, dir_fd=parent, follow_symlinks=False)
            ns = _mtime_ns(member)
            os.utime(base, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(fd)

    def _set_meta_fd(self, fd: int, member: tarfile.TarInfo, *, times: bool) -> None:
        # Order as containerd: owner (clears set-id bits), xattrs, mode, times.
        if self._as_root:
            os.fchown(fd, member.uid, member.gid)
        self._set_xattrs(fd, member)
        os.fchmod(fd, member.mode & 0o7777)
        if times:
            ns = _mtime_ns(member)
            os.utime(fd, ns=(ns, ns))

    def _set_xattrs(self, target: int | str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith("SCHILY.xattr."):
                continue
            name = key[len("SCHILY.xattr.") :]
            if not name or name.startswith(_FORBIDDEN_XATTR_PREFIXES):
                continue
            if not self._as_root and not name.startswith("user."):
                continue
            try:
                os.setxattr(target, name, value.encode("utf-8", "surrogateescape"))
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise

    def _set_root_meta(self, member: tarfile.TarInfo) -> None:
        fd = native.openat2(self._root_fd, ".", os.O_RDONLY | os.O_DIRECTORY, 0, _RESOLVE)
        try:
            self._set_meta_fd(fd, member, times=False)
        finally:
            os.close(fd)
        self._dir_times.append(_Deferred((), _mtime_ns(member)))

    # ---- whiteouts ----

    def _whiteout(self, parts: tuple[str, ...]) -> None:
        base = parts[-1]
        parent_parts = parts[:-1]
        if base == OPAQUE_MARKER:
            self._opaque(parent_parts)
            return
        victim = base[len(WHITEOUT_PREFIX) :]
        if not victim or victim in (".", "..") or victim.startswith(WHITEOUT_PREFIX):
            raise CorruptLayer(f"invalid whiteout {'/'.join(parts)!r}")
        target = (*parent_parts, victim)
        if self._mode is WhiteoutMode.OVERLAY:
            parent = self._open_dir(parent_parts, create=True)
            try:
                existing = _lstat(victim, parent)
                if existing is not None:
                    _remove(victim, parent, existing)
                os.mknod(victim, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
            finally:
                os.close(parent)
            self._unpacked.add(target)
            return
        if target in self._unpacked:
            return  # a whiteout hides lower layers only (layer.md)
        try:
            parent = self._open_dir(parent_parts, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing below to hide
        try:
            existing = _lstat(victim, parent)
            if existing is not None:
                _remove(victim, parent, existing)
        finally:
            os.close(parent)

    def _opaque(self, dir_parts: tuple[str, ...]) -> None:
        if self._mode is WhiteoutMode.OVERLAY:
            holder = self._open_dir(dir_parts, create=True)
            try:
                fd = native.openat2(holder, ".", os.O_RDONLY | os.O_DIRECTORY, 0, _RESOLVE)
            finally:
                os.close(holder)
            try:
                os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            if dir_parts not in self._unpacked and dir_parts:
                self._unpacked.add(dir_parts)
            return
        try:
            dfd = self._open_dir(dir_parts, create=False)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            with os.scandir(_proc_fd(dfd)) as entries:
                names = [e.name for e in entries]
            for name in names:
                if (*dir_parts, name) in self._unpacked:
                    continue  # this layer's own entries survive its opaque marker
                st = _lstat(name, dfd)
                if st is not None:
                    _remove(name, dfd, st)
        finally:
            os.close(dfd)

    # ---- end ----

    def _finish_dirs(self) -> None:
        # Directory mtimes last: creating entries inside would bump them again.
        for item in reversed(self._dir_times):
            try:
                fd = self._open_dir(item.parts, create=False)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed later in the same layer
            try:
                os.utime(_proc_fd(fd), ns=(item.mtime_ns, item.mtime_ns))
            finally:
                os.close(fd)


def _proc_fd(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _mtime_ns(member: tarfile.TarInfo) -> int:
    mtime = member.mtime
    if not isinstance(mtime, (int, float)) or mtime < 0:
        return 0
    return int(mtime * 1_000_000_000)


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(name: str, dir_fd: int, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd never follows symlinks out of the tree (fd-based walk).
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _copy(source: IO[bytes], fd: int) -> None:
    while True:
        chunk = source.read(_COPY_CHUNK)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def apply_layer(stream: IO[bytes], root: str, mode: WhiteoutMode) -> int:
    """Apply an uncompressed tar stream (read sequentially, never seeked) to ``root``."""
    with (
        LayerApplier(root, mode) as applier,
        _translated(),
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        return applier.apply(tar)
