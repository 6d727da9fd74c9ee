"""Layer snapshots and container root filesystems. Does I/O (files, mount(2)).

Each layer is unpacked once, in overlay form (whiteouts as 0:0 char devices, opaque
dirs as ``trusted.overlay.opaque=y``), into ``snapshots/<ChainID hex>``; it is renamed
there only after every check of its blob passed. A container's rootfs is an overlayfs
mount of those directories under a private upper dir, or, where overlayfs is missing
(probed once), a private flattened copy applied with the same in-root writer.

    mounts/<container id>/layers.json   the ChainIDs in use (read by gc), written first
    mounts/<container id>/upper, work   overlay's writable parts
    mounts/<container id>/rootfs        what the runtime gets
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from ocirt import native
from ocirt.atomic import Durability, remove_tree, write_atomic
from ocirt.config.ids import check_container_id
from ocirt.errors import ImageError
from ocirt.image.content.store import ContentStore
from ocirt.image.reference import Digest, parse_digest
from ocirt.image.rootfs.unpack import (
    OPAQUE_MARKER,
    OVERLAY_OPAQUE_XATTR,
    WHITEOUT_PREFIX,
    DataOpener,
    LayerApplier,
    WhiteoutMode,
)

log = logging.getLogger(__name__)

# mount(2) copies at most one page of option data.
_MAX_MOUNT_DATA = 4000


def create_snapshot(store: ContentStore, chain_id: Digest, fill: Callable[[Path], None]) -> Path:
    """Run ``fill(tmp_dir)`` (which unpacks and verifies) and commit the result under the
    ChainID; on any failure the temp dir goes and nothing counts."""
    tmp = store.new_snapshot_dir()
    try:
        fill(tmp)
        store.commit_snapshot(tmp, chain_id)
    except BaseException:
        remove_tree(tmp)
        raise
    return store.snapshot_path(chain_id)


class Snapshotter:
    """Prepares and releases container root filesystems from committed snapshots."""

    def __init__(self, store: ContentStore, *, use_overlay: bool | None = None) -> None:
        self._store = store
        self._mounts = store.root / "mounts"
        self._use_overlay = use_overlay
        self._probe_lock = threading.Lock()

    @property
    def overlay(self) -> bool:
        """Whether rootfs are overlay mounts; probed once, the first time it is asked.

        The probe runs under a lock: a burst of creates after a start would otherwise run
        it in parallel on the one probe dir, and a loser (EEXIST, a dir removed under its
        mount) would read as "no overlay" and leave every later container a private copy.
        """
        if self._use_overlay is None:
            with self._probe_lock:
                if self._use_overlay is None:
                    self._use_overlay = self._probe_overlay()
        return self._use_overlay

    def _probe_overlay(self) -> bool:
        probe = self._mounts / f".probe-{os.getpid()}"
        remove_tree(probe)  # left by a crashed process of the same pid
        try:
            for sub in ("lower", "upper", "work", "merged"):
                (probe / sub).mkdir(parents=True)
            data = f"lowerdir={probe}/lower,upperdir={probe}/upper,workdir={probe}/work,index=off"
            try:
                native.mount("overlay", str(probe / "merged"), "overlay", 0, data)
            except OSError as exc:
                log.warning("overlayfs cannot be mounted (%s): rootfs will be private copies", exc)
                return False
            native.umount(str(probe / "merged"), native.MNT_DETACH)
            return True
        finally:
            remove_tree(probe)

    def prepare(self, container_id: str, chain_ids: tuple[Digest, ...]) -> Path:
        """Build the rootfs of a container from bottom-to-top ChainIDs; idempotent."""
        base = self._mounts / check_container_id(container_id)
        rootfs = base / "rootfs"
        if (base / "layers.json").exists() and _is_mountpoint_or_ready(rootfs, base):
            return rootfs
        for chain in chain_ids:
            if not self._store.has_snapshot(chain):
                raise ImageError(f"snapshot {chain} is missing; pull the image again")
        base.mkdir(mode=0o711, exist_ok=True)
        lowers = [str(self._store.snapshot_path(c)) for c in reversed(chain_ids)]
        data = f"lowerdir={':'.join(lowers)},upperdir={base}/upper,workdir={base}/work,index=off"
        overlay = self.overlay and len(data) <= _MAX_MOUNT_DATA and bool(chain_ids)
        record = {"chainIDs": [str(c) for c in chain_ids], "overlay": overlay}
        # Not fsynced: after a power cut nothing is mounted, so the next activation writes
        # it again; gc keeps the snapshots of images in use whatever it finds here.
        write_atomic(base / "layers.json", json.dumps(record).encode(), durability=Durability.CRASH)
        try:
            rootfs.mkdir(mode=0o755, exist_ok=True)
            if overlay:
                (base / "upper").mkdir(mode=0o755, exist_ok=True)
                (base / "work").mkdir(mode=0o700, exist_ok=True)
                native.mount("overlay", str(rootfs), "overlay", 0, data)
            else:
                flatten(
                    [self._store.snapshot_path(c) for c in chain_ids],
                    rootfs,
                )
                (base / "ready").touch()
        except OSError as exc:
            self.release(container_id)
            raise ImageError(f"cannot prepare rootfs of {container_id}: {exc}") from exc
        except BaseException:
            self.release(container_id)
            raise
        return rootfs

    def release(self, container_id: str) -> None:
        """Unmount and remove everything of the container's rootfs; idempotent."""
        base = self._mounts / check_container_id(container_id)
        rootfs = base / "rootfs"
        try:
            native.umount(str(rootfs))
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                native.umount(str(rootfs), native.MNT_DETACH)
            elif exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise ImageError(f"cannot unmount rootfs of {container_id}: {exc}") from exc
        remove_tree(base)

    def active_chains(self) -> set[Digest]:
        """ChainIDs some prepared rootfs uses, for gc."""
        out: set[Digest] = set()
        for layers in self._mounts.glob("*/layers.json"):
            try:
                doc = json.loads(layers.read_bytes())
                out.update(parse_digest(c) for c in doc["chainIDs"])
            except (ValueError, KeyError, TypeError, OSError):
                continue
        return out

    def containers(self) -> list[str]:
        return sorted(p.parent.name for p in self._mounts.glob("*/layers.json"))


def _is_mountpoint_or_ready(rootfs: Path, base: Path) -> bool:
    return rootfs.is_mount() or (base / "ready").exists()


# ---- copy fallback: replay overlay-form snapshots through the naive in-root writer ----


def flatten(snapshots: list[Path], dest: Path) -> None:
    """Apply overlay-form snapshot dirs, bottom first, onto ``dest`` (naive whiteouts)."""
    for snap in snapshots:
        with LayerApplier(str(dest), WhiteoutMode.NAIVE) as applier:
            for member, opener in _snapshot_entries(snap):
                applier.apply_entry(member, opener)
            applier.finish()


def _snapshot_entries(
    snap: Path,
) -> Iterator[tuple[tarfile.TarInfo, DataOpener]]:
    seen: dict[tuple[int, int], str] = {}
    root_info = _tarinfo(snap, "", os.lstat(snap))
    yield root_info, _no_data
    for dirpath, dirnames, filenames in os.walk(snap):
        rel_dir = os.path.relpath(dirpath, snap)
        rel_dir = "" if rel_dir == "." else rel_dir
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = _join(rel_dir, name)
            st = os.lstat(path)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                yield tarfile.TarInfo(_join(rel_dir, WHITEOUT_PREFIX + name)), _no_data
                continue
            info = _tarinfo(snap, rel, st)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen[key]
                    info.size = 0
                    yield info, _no_data
                    continue
                seen[key] = rel
            yield info, _opener(path) if stat.S_ISREG(st.st_mode) else _no_data
            if stat.S_ISDIR(st.st_mode) and _xattr(path, OVERLAY_OPAQUE_XATTR) == b"y":
                yield tarfile.TarInfo(f"{rel}/{OPAQUE_MARKER}"), _no_data


def _no_data() -> None:
    return None


def _opener(path: str) -> DataOpener:
    def open_file() -> IO[bytes]:
        return open(path, "rb")  # the applier closes it after the copy

    return open_file


def _join(rel_dir: str, name: str) -> str:
    return f"{rel_dir}/{name}" if rel_dir else name


def _xattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _tarinfo(snap: Path, rel: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel or ".")
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = st.st_mtime
    full = os.path.join(snap, rel) if rel else str(snap)
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(st.st_mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(full)
    elif stat.S_ISFIFO(st.st_mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    if not stat.S_ISLNK(st.st_mode):
        try:
            names = os.listxattr(full, follow_symlinks=False)
        except OSError:
            names = []
        pax: dict[str, str] = {}
        for name in names:
            if name.startswith("trusted.overlay."):
                continue
            value = _xattr(full, name)
            if value is not None:
                pax[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
        info.pax_headers = pax
    return info
