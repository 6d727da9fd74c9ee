"""The directory rootfs and host network adapters (`ocirt.daemon.adapters`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirt.config.model import ContainerConfig, Decryption, NetworkMode
from ocirt.daemon.adapters import DirectoryRootfs, HostNetwork
from ocirt.errors import ImageError, Unavailable
from ocirt.spec.facts import ImageConfig


def test_directory_rootfs_gives_each_container_a_private_copy(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "sh").write_text("#!")
    (source / "bin" / "ls").symlink_to("sh")
    image = ImageConfig(cmd=("sh",))
    provider = DirectoryRootfs(source, image)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    prepared = provider.prepare("c1", "img", Decryption(), bundle)
    assert prepared.path == bundle / "rootfs"
    assert prepared.image == image
    assert (prepared.path / "bin" / "ls").is_symlink()
    (prepared.path / "bin" / "sh").write_text("changed")
    assert (source / "bin" / "sh").read_text() == "#!"
    assert provider.activate("c1", "img", Decryption(), bundle).path == prepared.path
    provider.release("c1", bundle)
    assert not prepared.path.exists()
    assert source.exists()
    with pytest.raises(ImageError, match="missing"):
        provider.activate("c1", "img", Decryption(), bundle)
    provider.release("c1", bundle)


def test_directory_rootfs_reports_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ImageError):
        DirectoryRootfs(tmp_path / "absent").prepare("c1", "img", Decryption(), tmp_path)


def test_host_network_writes_hosts_files(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("127.0.0.1 localhost")
    (etc / "resolv.conf").write_text("nameserver 127.0.0.53\n")
    files = tmp_path / "files"
    files.mkdir()
    network = HostNetwork(etc)
    config = ContainerConfig(network_mode=NetworkMode.HOST, extra_hosts=("db:10.0.0.5",))
    attached = network.attach("c1", config, files)
    assert attached.attachment.is_host
    assert attached.hostname is None
    assert attached.hosts is not None and attached.resolv_conf is not None
    assert attached.hosts.read_text() == "127.0.0.1 localhost\n10.0.0.5\tdb\n"
    assert attached.resolv_conf.read_text() == "nameserver 127.0.0.53\n"


def test_host_network_refuses_bridge_mode(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="bridge"):
        HostNetwork(tmp_path).attach("c1", ContainerConfig(), tmp_path)
