"""The container id as a name on disk and in the kernel. Pure.

Ids come from Ditto messages and the local API, and name directories (the image store's
`mounts/<id>`), netns entries and firewall comments, so one rule decides what may pass.
"""

from __future__ import annotations

import re

from ocirt.errors import InvalidArgument

# ASCII only, and a letter or digit first: never ".", "..", a hidden name or an option
# ("-x") for the tools that get it as an argument.
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_container_id(container_id: str) -> str:
    """The id itself if it is a plain name (at most 128 characters); else InvalidArgument."""
    if not _CONTAINER_ID.fullmatch(container_id):
        raise InvalidArgument(f"invalid container id {container_id!r}")
    return container_id
