from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocirt.errors import InvalidArgument
from ocirt.image.users import ResolvedUser, parse_group, parse_passwd, resolve, resolve_user

PASSWD = parse_passwd("root:x:0:0::/:/bin/sh\nuser:x:1000:1000::/:/bin/sh\nbad:x:y:1\n")
GROUP = parse_group("root:x:0:\naudio:x:29:user\nvideo:x:44:other,user\nuser:x:1000:\n")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ResolvedUser(0, 0, ())),
        ("user", ResolvedUser(1000, 1000, (29, 44))),
        ("user:audio", ResolvedUser(1000, 29, ())),
        ("user:7", ResolvedUser(1000, 7, ())),
        ("1000", ResolvedUser(1000, 1000, ())),
        ("4242", ResolvedUser(4242, 0, ())),
        ("4242:17", ResolvedUser(4242, 17, ())),
        ("2147483647:0", ResolvedUser(2**31 - 1, 0, ())),
    ],
)
def test_resolve(spec: str, expected: ResolvedUser) -> None:
    assert resolve(spec, PASSWD, GROUP) == expected


@pytest.mark.parametrize("spec", ["nobody", "user:nogroup", "2147483648", "0:4294967296", "bad"])
def test_unknown_or_out_of_range(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        resolve(spec, PASSWD, GROUP)


def test_reads_the_images_own_files_even_through_an_absolute_symlink(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "real").mkdir(parents=True)
    (root / "real" / "passwd").write_text("app:x:321:654::/:/bin/sh\n")
    (root / "real" / "group").write_text("")
    # /etc -> /real must mean <root>/real, never the host's /real or /etc.
    os.symlink("/real", root / "etc")
    assert resolve_user(root, "app") == (321, 654, ())
    with pytest.raises(InvalidArgument):
        resolve_user(root, "root")
