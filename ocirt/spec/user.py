"""Resolve an image's ``User`` against the rootfs's passwd and group text. Pure: no I/O.

image-spec config.md: User may be ``user``, ``uid``, ``user:group``, ``uid:gid``,
``uid:group`` or ``user:gid``. Names are resolved from the rootfs; an unknown name is an
error. Additional groups (from /etc/group membership) are set only when the user is
given by name and no group is given, as containerd does (docs/oci-image-notes.md "Config → runtime
spec"). The caller reads the files (confined to the rootfs) and passes their text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocirt.errors import ImageError
from ocirt.spec.facts import UserIds

# Ids above int32 are not ids: containerd treated them as names and so mapped them
# wrongly (CVE-2024-40635); here they fail to resolve.
_MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class _PasswdEntry:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class _GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _id(text: str) -> int | None:
    if not text.isdigit():
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def _passwd(text: str) -> list[_PasswdEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or line.startswith("#"):
            continue
        uid, gid = _id(fields[2]), _id(fields[3])
        if uid is not None and gid is not None:
            entries.append(_PasswdEntry(fields[0], uid, gid))
    return entries


def _groups(text: str) -> list[_GroupEntry]:
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 3 or line.startswith("#"):
            continue
        gid = _id(fields[2])
        if gid is None:
            continue
        members = tuple(m for m in (fields[3].split(",") if len(fields) > 3 else []) if m)
        entries.append(_GroupEntry(fields[0], gid, members))
    return entries


def resolve_user(user: str, passwd: str | None, group: str | None) -> UserIds:
    """The uid, gid and additional gids for `user`; passwd/group None = file missing."""
    user = user.strip()
    if not user:
        user = "0"
    name_part, sep, group_part = user.partition(":")
    users = _passwd(passwd or "")
    groups = _groups(group or "")

    uid = _id(name_part)
    by_name = uid is None
    if by_name:
        match = next((e for e in users if e.name == name_part), None)
        if match is None:
            raise ImageError(f"unable to find user {name_part}: no matching entries in passwd file")
        uid, gid = match.uid, match.gid
    else:
        assert uid is not None
        numeric = next((e for e in users if e.uid == uid), None)
        gid = numeric.gid if numeric is not None else 0

    if sep:
        given_gid = _id(group_part)
        if given_gid is None:
            gmatch = next((g for g in groups if g.name == group_part), None)
            if gmatch is None:
                raise ImageError(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
            given_gid = gmatch.gid
        return UserIds(uid=uid, gid=given_gid)

    extra: tuple[int, ...] = ()
    if by_name:
        extra = tuple(
            dict.fromkeys(g.gid for g in groups if name_part in g.members and g.gid != gid)
        )
    return UserIds(uid=uid, gid=gid, additional_gids=extra)
