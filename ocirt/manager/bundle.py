"""A container's runtime spec: resolve the host and image facts, build the spec with the
pure `ocirt.spec.builder.build_spec`, write `config.json`. Does I/O (reads the rootfs'
passwd/group and device nodes; writes the spec).

Used by the manager and by `ocirt spec`, so the printed spec is the one that runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocirt.atomic import PRIVATE_FILE, Durability, write_atomic
from ocirt.config.model import ContainerDefinition
from ocirt.errors import InvalidArgument
from ocirt.runtime.hostfacts import image_user, stat_device
from ocirt.spec import layout
from ocirt.spec.builder import build_spec
from ocirt.spec.facts import BundlePaths, HostFacts, ImageConfig, NetworkAttachment
from ocirt.spec.user import resolve_user


def bundle_paths(
    container_id: str,
    rootfs: Path,
    *,
    hosts: Path | None = None,
    resolv_conf: Path | None = None,
    hostname: Path | None = None,
    cgroup_parent: str = layout.DEFAULT_CGROUP_PARENT,
) -> BundlePaths:
    """The host paths a container's spec refers to (None files are not bind-mounted)."""
    return BundlePaths(
        rootfs=str(rootfs),
        hosts=str(hosts) if hosts else None,
        resolv_conf=str(resolv_conf) if resolv_conf else None,
        hostname=str(hostname) if hostname else None,
        cgroups_path=layout.cgroups_path(container_id, cgroup_parent),
    )


def make_spec(
    definition: ContainerDefinition,
    *,
    image: ImageConfig,
    host: HostFacts,
    network: NetworkAttachment,
    paths: BundlePaths,
) -> dict[str, Any]:
    """Resolve the facts the spec needs (the image user in the rootfs, the devices on the
    host), then build it. Raises InvalidArgument for a spec that cannot run."""
    config = definition.config
    devices = {d.path_on_host: stat_device(d.path_on_host) for d in config.devices}
    for mount in config.mount_points:
        check_mount_source(mount.source)
    if Path(paths.rootfs).is_dir():
        user = image_user(paths.rootfs, image.user)
    else:
        # Without a rootfs (`ocirt spec` before create) only numeric users resolve.
        user = resolve_user(image.user, None, None)
    return build_spec(
        definition,
        image=image,
        user=user,
        host=host,
        network=network,
        paths=paths,
        devices=devices,
    )


def check_mount_source(source: str) -> None:
    """A bind mount's source must exist on the host: runc would fail at start, after the
    container was accepted (Docker's `--mount` refuses at once too)."""
    try:
        os.stat(source)
    except OSError as exc:
        raise InvalidArgument(
            f"the source of mount point {source} cannot be used: {exc.strerror}"
        ) from exc


def write_spec(path: Path, spec: Mapping[str, Any]) -> None:
    # Rebuilt at every start: atomic, but not worth an fsync. Compact, because json's C
    # encoder only serves calls without an indent (the pure-Python one took ~1 ms).
    # Owner only: the spec holds the container's env.
    write_atomic(
        path, json.dumps(spec, separators=(",", ":")), PRIVATE_FILE, durability=Durability.CRASH
    )
