"""The contract suites run each implementation; the real runtime needs the integration
fixtures (a busybox rootfs, a private runc root, a cgroup parent)."""

from __future__ import annotations

from tests.integration.conftest import busybox_rootfs, cgroup_parent, runc_root

__all__ = ["busybox_rootfs", "cgroup_parent", "runc_root"]
