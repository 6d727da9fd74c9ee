from __future__ import annotations

from ocirt.spec.layout import bundle_paths, cgroups_path

ID = "3f2a9c1e7b4d4e0f9a8b7c6d5e4f3a2b"


def test_cgroup_is_relative() -> None:
    assert cgroups_path(ID) == f"ocirt/{ID}"
    assert not cgroups_path(ID).startswith("/")


def test_bundle_paths_under_meta_path() -> None:
    paths = bundle_paths(ID, "/data/cm/")
    assert paths.rootfs == f"/data/cm/containers/{ID}/bundle/rootfs"
    assert paths.hosts == f"/data/cm/containers/{ID}/hosts"
    assert paths.resolv_conf == f"/data/cm/containers/{ID}/resolv.conf"
    assert paths.hostname == f"/data/cm/containers/{ID}/hostname"
    assert paths.cgroups_path == f"ocirt/{ID}"
    bare = bundle_paths(ID, network_files=False)
    assert (bare.hosts, bare.resolv_conf, bare.hostname) == (None, None, None)
    assert bare.rootfs.startswith("/var/lib/container-management/containers/")
