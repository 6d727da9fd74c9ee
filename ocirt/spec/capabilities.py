"""Linux capability names, Docker's default set, and the bounding-mask decoder. Pure: no I/O.

Capabilities travel as names (``CAP_NET_ADMIN``) in the runtime spec; the kernel reports
them as a hex bit mask in ``/proc/<pid>/status``. The index of a name in `CAPABILITIES`
is its bit number (linux/capability.h).
"""

from __future__ import annotations

from collections.abc import Iterable

from ocirt.errors import InvalidArgument

CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# Docker's default set (moby daemon/pkg/oci/caps/defaults.go), in Docker's order.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

_KNOWN = frozenset(CAPABILITIES)


def normalize(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` and ``cap_net_admin`` all become ``CAP_NET_ADMIN``."""
    text = name.strip().upper()
    full = text if text.startswith("CAP_") else f"CAP_{text}"
    if full not in _KNOWN:
        raise InvalidArgument(f"unknown capability {name!r}")
    return full


def from_mask(mask: int) -> tuple[str, ...]:
    """The names of the bits set in a capability mask, in bit order.

    Bits beyond the last capability this module knows are ignored: a spec cannot name
    them, and runc would not grant them either.
    """
    return tuple(name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1)


def parse_mask(text: str) -> int:
    """Parse the hex value of a ``CapBnd:`` line of /proc/<pid>/status."""
    try:
        return int(text.strip(), 16)
    except ValueError as exc:
        raise InvalidArgument(f"invalid capability mask {text!r}") from exc


def merge(base: Iterable[str], extra: Iterable[str]) -> tuple[str, ...]:
    """`base` followed by the names of `extra` not already in it, keeping order."""
    return tuple(dict.fromkeys([*base, *extra]))
