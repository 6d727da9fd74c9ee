"""Where ocirt puts a container's files, netns and cgroup. Pure: no I/O.

The scheme (documented for operators, and used by `ocirt spec` to print the spec that
ocirt would write):

- per-container directory ``<meta_path>/containers/<id>/`` (Kanto's default meta path
  is ``/var/lib/container-management``), holding Kanto's persisted ``config.json``, the
  runc bundle ``bundle/`` (runtime spec ``bundle/config.json`` and ``bundle/rootfs/``),
  and the network files ``hosts``, ``resolv.conf`` and ``hostname`` that are
  bind-mounted at ``/etc/...``;
- network namespace: ``/var/run/netns/<name>``, made by the bridge network at start and
  named by `ocirt.network.plan.netns_name` (the one naming);
- cgroup ``<parent>/<id>`` (parent ``ocirt`` unless configured), relative, so runc nests
  it below the manager's own cgroup.
"""

from __future__ import annotations

from ocirt.spec.facts import BundlePaths

DEFAULT_META_PATH = "/var/lib/container-management"
NETNS_DIR = "/var/run/netns"


DEFAULT_CGROUP_PARENT = "ocirt"


def cgroups_path(container_id: str, parent: str = DEFAULT_CGROUP_PARENT) -> str:
    return f"{parent}/{container_id}"


def container_dir(container_id: str, meta_path: str = DEFAULT_META_PATH) -> str:
    return f"{meta_path.rstrip('/')}/containers/{container_id}"


def bundle_paths(
    container_id: str, meta_path: str = DEFAULT_META_PATH, *, network_files: bool = True
) -> BundlePaths:
    """The paths of one container under `meta_path`; `network_files` False omits /etc files."""
    base = container_dir(container_id, meta_path)
    return BundlePaths(
        rootfs=f"{base}/bundle/rootfs",
        hosts=f"{base}/hosts" if network_files else None,
        resolv_conf=f"{base}/resolv.conf" if network_files else None,
        hostname=f"{base}/hostname" if network_files else None,
        cgroups_path=cgroups_path(container_id),
    )
