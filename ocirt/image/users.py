"""Resolve an image's ``User`` against the image's own /etc/passwd and /etc/group.

``parse_*`` and ``resolve`` are pure; ``resolve_user`` reads the two files through
openat2(RESOLVE_IN_ROOT), so a rootfs whose /etc is a symlink to the host's /etc still
reads its own (containerd openUserFile). image-spec config.md: names are resolved,
numbers copied, an unknown name is an error. Ids are capped at 2**31-1 (CVE-2024-40635).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ocirt import native
from ocirt.errors import InvalidArgument

MAX_ID = 2**31 - 1
_MAX_FILE = 4 << 20


@dataclass(frozen=True, slots=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]


def _id(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 12 else None


def parse_passwd(text: str) -> list[PasswdEntry]:
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        uid, gid = _id(fields[2]), _id(fields[3])
        if uid is not None and gid is not None:
            out.append(PasswdEntry(fields[0], uid, gid))
    return out


def parse_group(text: str) -> list[GroupEntry]:
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 3 or line.startswith("#"):
            continue
        gid = _id(fields[2])
        if gid is not None:
            members = tuple(m for m in (fields[3] if len(fields) > 3 else "").split(",") if m)
            out.append(GroupEntry(fields[0], gid, members))
    return out


def _checked(value: int, what: str) -> int:
    if value > MAX_ID:
        raise InvalidArgument(f"{what} {value} is out of range (max {MAX_ID})")
    return value


def resolve(spec: str, passwd: list[PasswdEntry], group: list[GroupEntry]) -> ResolvedUser:
    """``user``, ``uid``, ``user:group``, ``uid:gid`` and mixes; "" means root."""
    user_part, _, group_part = spec.partition(":")
    user_part = user_part or "0"
    numeric_uid = _id(user_part)
    entry: PasswdEntry | None
    if numeric_uid is not None:
        uid = _checked(numeric_uid, "uid")
        entry = next((p for p in passwd if p.uid == uid), None)
    else:
        entry = next((p for p in passwd if p.name == user_part), None)
        if entry is None:
            raise InvalidArgument(f"unable to find user {user_part}: no matching entries in passwd")
        uid = _checked(entry.uid, "uid")
    if group_part:
        numeric_gid = _id(group_part)
        if numeric_gid is not None:
            gid = _checked(numeric_gid, "gid")
        else:
            match = next((g for g in group if g.name == group_part), None)
            if match is None:
                raise InvalidArgument(
                    f"unable to find group {group_part}: no matching entries in group"
                )
            gid = _checked(match.gid, "gid")
        return ResolvedUser(uid, gid, ())
    gid = _checked(entry.gid, "gid") if entry is not None else 0
    if numeric_uid is not None or entry is None:
        return ResolvedUser(uid, gid, ())
    extra = sorted({g.gid for g in group if entry.name in g.members and g.gid != gid})
    return ResolvedUser(uid, gid, tuple(_checked(g, "gid") for g in extra))


def _read_in_root(rootfs: Path, path: str) -> str:
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = native.openat2(
            root_fd,
            path,
            os.O_RDONLY | os.O_CLOEXEC,
            0,
            native.RESOLVE_IN_ROOT | native.RESOLVE_NO_MAGICLINKS,
        )
    except (FileNotFoundError, NotADirectoryError):
        return ""
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as f:
        return f.read(_MAX_FILE).decode("utf-8", "replace")


def resolve_user(rootfs: Path, spec: str) -> tuple[int, int, tuple[int, ...]]:
    """(uid, gid, additional_gids) of ``spec`` inside the image rootfs."""
    try:
        passwd = parse_passwd(_read_in_root(rootfs, "etc/passwd"))
        group = parse_group(_read_in_root(rootfs, "etc/group"))
    except OSError as exc:
        raise InvalidArgument(f"cannot read the image's user database: {exc}") from exc
    user = resolve(spec, passwd, group)
    return user.uid, user.gid, user.additional_gids
