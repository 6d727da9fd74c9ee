"""Container root filesystems: overlay sharing and isolation, whiteouts in overlay and
copy mode, the image's users, and a real runc container reading its rootfs."""

from __future__ import annotations

import json
import secrets
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from ocirt.image.service import ImageService
from ocirt.runtime.hostfacts import image_user
from ocirt.spec.facts import UserIds

from .conftest import BuiltImage, mkimage

pytestmark = pytest.mark.integration


def lowerdir_of(mountpoint: Path) -> list[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(mountpoint):
            options = line.split(" - ")[1].split()[2]
            for opt in options.split(","):
                if opt.startswith("lowerdir="):
                    return opt[len("lowerdir=") :].split(":")
    raise AssertionError(f"{mountpoint} is not mounted")


def test_two_containers_share_lower_layers_but_not_writes(
    busybox_image: BuiltImage, home: Path
) -> None:
    service = ImageService(home)
    (image,) = service.load(busybox_image.layout, name="localhost/bb")
    a = service.prepare_rootfs(image, "ctr-a")
    b = service.prepare_rootfs(image, "ctr-b")
    try:
        lowers = lowerdir_of(a)
        assert lowers == lowerdir_of(b)
        expected = [str(service.store.snapshot_path(c)) for c in reversed(image.chain_ids)]
        assert lowers == expected
        (a / "etc" / "hostname").write_text("changed-in-a\n")
        (a / "new-in-a").write_text("a")
        (a / "marker").unlink()
        assert (b / "etc" / "hostname").read_text() == "busybox\n"
        assert not (b / "new-in-a").exists()
        assert (b / "marker").read_text() == busybox_image.marker
        # The shared snapshot itself never changed.
        top = service.store.snapshot_path(image.chain_ids[-1])
        assert (top / "marker").read_text() == busybox_image.marker
        assert image_user(str(a), "user") == UserIds(1000, 1000, (29, 44))
    finally:
        service.release_rootfs("ctr-a")
        service.release_rootfs("ctr-b")
    assert not a.exists() and not b.exists()


@pytest.mark.parametrize("overlay", [True, False])
def test_whiteouts_and_opaque_dirs(tmp_path: Path, home: Path, overlay: bool) -> None:
    def lower(t: tarfile.TarFile) -> None:
        mkimage.add_entry(t, "keep", tarfile.DIRTYPE)
        mkimage.add_file(t, "keep/old", b"old")
        mkimage.add_file(t, "gone", b"gone")
        mkimage.add_entry(t, "opaque", tarfile.DIRTYPE)
        mkimage.add_file(t, "opaque/lower-only", b"x")
        mkimage.add_entry(t, "link", tarfile.SYMTYPE, linkname="/keep/old")
        mkimage.add_file(t, "hard1", b"hard")
        mkimage.add_entry(t, "hard2", tarfile.LNKTYPE, linkname="hard1", mode=0o644)

    def upper(t: tarfile.TarFile) -> None:
        mkimage.add_file(t, "opaque/upper-file", b"new")
        mkimage.add_file(t, "opaque/.wh..wh..opq", b"")  # after its sibling: still applies
        mkimage.add_file(t, ".wh.gone", b"")
        mkimage.add_file(t, "keep/added", b"added")

    layout = tmp_path / "wh"
    layers = [mkimage.Layer(mkimage.tar_bytes(lower)), mkimage.Layer(mkimage.tar_bytes(upper))]
    desc = mkimage.write_image(layout, layers)
    mkimage.write_index(layout, "v1", [desc], nested=False)
    service = ImageService(home, use_overlay=overlay)
    (image,) = service.load(layout, name="localhost/wh")
    cid = f"wh-{secrets.token_hex(3)}"
    root = service.prepare_rootfs(image, cid)
    try:
        assert sorted(p.name for p in root.iterdir()) == [
            "hard1",
            "hard2",
            "keep",
            "link",
            "opaque",
        ]
        assert sorted(p.name for p in (root / "opaque").iterdir()) == ["upper-file"]
        assert sorted(p.name for p in (root / "keep").iterdir()) == ["added", "old"]
        assert (root / "link").readlink() == Path("/keep/old")
        assert (root / "hard1").stat().st_ino == (root / "hard2").stat().st_ino
        assert root.is_mount() == overlay
    finally:
        service.release_rootfs(cid)


def test_runc_container_sees_the_image(
    busybox_image: BuiltImage, home: Path, runc_root: Path, tmp_path: Path
) -> None:
    service = ImageService(home)
    (image,) = service.load(busybox_image.layout, name="localhost/bb")
    cid = f"img-{secrets.token_hex(4)}"
    rootfs = service.prepare_rootfs(image, cid)
    try:
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        spec = json.loads((bundle / "config.json").read_text())
        user = image_user(str(rootfs), image.config.execution.user)
        spec["root"] = {"path": str(rootfs), "readonly": False}
        spec["process"]["terminal"] = False
        spec["process"]["user"] = {
            "uid": user.uid,
            "gid": user.gid,
            "additionalGids": list(user.additional_gids),
        }
        spec["process"]["args"] = ["/bin/sh", "-c", "cat /marker; echo; id -u; echo x > /tmp/w"]
        (bundle / "config.json").write_text(json.dumps(spec))
        out = subprocess.run(
            ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), cid],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.split() == [busybox_image.marker, "1000"]
        assert (home / "images" / "mounts" / cid / "upper" / "tmp" / "w").read_text() == "x\n"
    finally:
        service.release_rootfs(cid)


def mount_types(mountpoints: list[Path]) -> dict[Path, str]:
    """The filesystem type of each mount point that /proc/self/mountinfo lists."""
    wanted = {str(p): p for p in mountpoints}
    found: dict[Path, str] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] in wanted:
            found[wanted[fields[4]]] = line.split(" - ")[1].split()[0]
    return found


def unmount_everything_under(root: Path) -> None:
    points = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(f"{root}/")
    ]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def test_a_burst_of_prepares_on_a_fresh_store_all_get_overlays(
    busybox_image: BuiltImage, home: Path
) -> None:
    """The first rootfs prepares after a start probe overlayfs; run side by side, they
    used to share one probe dir (EEXIST, or a probe that fails and turns the rest into
    private copies)."""
    (image,) = ImageService(home).load(busybox_image.layout, name="localhost/bb")
    service = ImageService(home)  # as after a daemon start: overlay not probed yet
    ids = [f"burst-{secrets.token_hex(3)}-{i}" for i in range(30)]
    start = threading.Barrier(len(ids))
    errors: list[BaseException] = []
    rootfs: list[Path] = []

    def prepare(container_id: str) -> None:
        start.wait()
        try:
            rootfs.append(service.prepare_rootfs(image, container_id))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(cid,)) for cid in ids]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert mount_types(rootfs) == {path: "overlay" for path in rootfs}
        assert len(rootfs) == len(ids)
        for path in rootfs:
            assert (path / "marker").read_text() == busybox_image.marker
    finally:
        for cid in ids:
            service.release_rootfs(cid)
        unmount_everything_under(home)  # a probe mount the old code lost track of
    assert mount_types(rootfs) == {}
    assert not list((home / "images" / "mounts").glob(".probe-*"))
