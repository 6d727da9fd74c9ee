from __future__ import annotations

import pytest

from ocirt.errors import ImageError
from ocirt.spec.facts import UserIds
from ocirt.spec.user import resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
# a comment
broken line
user:x:1000:1000:user:/home/user:/bin/sh
svc:x:1001:2000::/:/bin/false
"""
GROUP = """root:x:0:
audio:x:29:user
video:x:44:svc,user
user:x:1000:
staff:x:50:
bad:x:notanumber:user
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", UserIds(0, 0)),
        ("root", UserIds(0, 0)),
        ("user", UserIds(1000, 1000, (29, 44))),
        ("svc", UserIds(1001, 2000, (44,))),
        ("1000", UserIds(1000, 1000)),
        ("4242", UserIds(4242, 0)),
        ("user:staff", UserIds(1000, 50)),
        ("user:7", UserIds(1000, 7)),
        ("1000:staff", UserIds(1000, 50)),
        ("5:6", UserIds(5, 6)),
    ],
)
def test_resolves(spec: str, expected: UserIds) -> None:
    assert resolve_user(spec, PASSWD, GROUP) == expected


@pytest.mark.parametrize("spec", ["nobody", "user:nogroup", "99999999999", "-1"])
def test_unknown_names_are_image_errors(spec: str) -> None:
    with pytest.raises(ImageError):
        resolve_user(spec, PASSWD, GROUP)


def test_missing_files_allow_numeric_ids_only() -> None:
    assert resolve_user("12:34", None, None) == UserIds(12, 34)
    assert resolve_user("", None, None) == UserIds(0, 0)
    with pytest.raises(ImageError, match="passwd"):
        resolve_user("root", None, None)
