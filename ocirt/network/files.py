"""A container's hosts, resolv.conf and hostname files on disk. Does I/O.

The contents come from the pure `ocirt.network.hosts`. New files are written atomically
(temp file and rename, no fsync: they are re-made at every attach) into a per-container
directory chosen by the caller; the spec builder bind-mounts them. A bind mount pins the
inode, so a running container's hosts file is refreshed in place (same inode) rather
than replaced.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ocirt.atomic import Durability, write_atomic
from ocirt.errors import NetworkError
from ocirt.network.hosts import pick_resolv_source

ETC_RESOLV = Path("/etc/resolv.conf")
SYSTEMD_RESOLV = Path("/run/systemd/resolve/resolv.conf")
ETC_HOSTS = Path("/etc/hosts")


@dataclass(frozen=True, slots=True)
class EtcFiles:
    hosts: Path
    resolv_conf: Path
    hostname: Path


def rewrite_in_place(path: Path, text: str) -> None:
    """Replace a file's content keeping its inode, for files that are bind-mounted.
    Not atomic for a reader, which a bind mount rules out; the content is derived."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            data = text.encode()
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        finally:
            os.close(fd)
    except OSError as exc:
        raise NetworkError(f"cannot rewrite {path}: {exc}") from exc


def write_etc_files(files_dir: Path, hosts: str, resolv_conf: str, hostname: str) -> EtcFiles:
    files = EtcFiles(files_dir / "hosts", files_dir / "resolv.conf", files_dir / "hostname")
    try:
        files_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NetworkError(f"cannot create {files_dir}: {exc}") from exc
    for path, text in (
        (files.hosts, hosts),
        (files.resolv_conf, resolv_conf),
        (files.hostname, hostname),
    ):
        if path.exists():
            # Already bind-mounted into a running container (a re-attach): keep the inode.
            rewrite_in_place(path, text)
        else:
            # Derived files, rewritten at every attach: atomic, but not worth three fsyncs
            # on the start path (a crash leaves the old or new content, or none, re-made).
            try:
                write_atomic(path, text, durability=Durability.CRASH)
            except OSError as exc:
                raise NetworkError(f"cannot write {path}: {exc}") from exc
    return files


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NetworkError(f"cannot read {path}: {exc}") from exc


def host_resolv_conf() -> str:
    return pick_resolv_source(_read_optional(ETC_RESOLV) or "", _read_optional(SYSTEMD_RESOLV))


def host_hosts() -> str:
    return _read_optional(ETC_HOSTS) or ""


def host_hostname() -> str:
    return os.uname().nodename
