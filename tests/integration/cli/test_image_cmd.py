"""`ocirt image` against a real daemon and a real docker-registry on 127.0.0.1: one store
(the daemon's, with its insecure registries), an image in use kept, a TLS error against a
plain-HTTP registry that says what to change, and a failed pull that leaves nothing."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_harness import Service, in_container

from tests.integration.image.conftest import Registry, _start_registry, mkimage

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    for host, storage in _start_registry(tmp_path_factory.mktemp("reg"), ""):
        yield Registry(host, storage)


def store_files(home: Path) -> set[str]:
    """Every blob, snapshot and partial download in the daemon's image store."""
    images = home / "images"
    return {
        str(p.relative_to(images))
        for part in ("blobs", "snapshots", "ingest")
        if (images / part).exists()
        for p in (images / part).rglob("*")
    }


def test_one_store_through_the_daemon(
    service: Service, registry: Registry, busybox_layout: Path
) -> None:
    registry.push(busybox_layout, "itest", "test/busybox:v1")
    ref = f"{registry.host}/test/busybox:v1"
    service.start()
    before = store_files(service.home)

    # The daemon does not know the registry as insecure: HTTPS against plain HTTP.
    refused = service.cli("image", "pull", ref)
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"Error: {ref}: TLS with {registry.host} failed: ")
    assert refused.stderr.rstrip().endswith(
        f"; if {registry.host} is a plain-HTTP registry, list it in "
        "containers.insecure_registries of the daemon config (or start the daemon with "
        f"--ccl-insecure-registries={registry.host})"
    )
    assert store_files(service.home) == before
    # A create that has to pull fails the same way, and leaves no container.
    create = service.cli("create", "-n", "never", ref)
    assert create.returncode == 1
    assert f"--ccl-insecure-registries={registry.host}" in create.stderr
    assert json.loads(service.cli("list", "--json").stdout) == []
    assert store_files(service.home) == before

    service.stop()
    service.start(f"--ccl-insecure-registries=localhost,{registry.host}")
    pulled = service.cli("image", "pull", ref)
    assert pulled.returncode == 0, pulled.stderr
    reference, digest = pulled.stdout.split()
    assert reference == ref and digest.startswith("sha256:")
    listed = json.loads(service.cli("image", "list", "--json").stdout)
    assert sorted(i["reference"] for i in listed) == sorted([ref, "localhost/busybox:itest"])
    # The daemon's own store holds it (the CLI has no store of its own).
    from ocirt.image.service import ImageService

    assert str(ImageService(service.home).get(ref).digest) == digest

    done = service.cli("create", "-n", "user", "--start", ref, *SERVE)
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    assert in_container(service, cid, "echo", "up").strip() == "up"
    in_use = service.cli("image", "remove", ref)
    assert in_use.returncode == 1
    assert in_use.stderr == (
        f"Error: image {ref} is used by container user ({cid}): remove the container first, "
        "or force the removal\n"
    )
    assert ref in service.cli("image", "list").stdout
    assert service.cli("remove", "-f", "user").returncode == 0
    removed = service.cli("image", "remove", ref)
    assert (removed.returncode, removed.stdout) == (0, f"{ref}\n")
    assert ref not in service.cli("image", "list").stdout

    # save and load go through the daemon too, with paths relative to the caller.
    out = service.tmp / "saved.tar"
    saved = service.cli("image", "save", str(out), "localhost/busybox:itest")
    assert saved.returncode == 0, saved.stderr
    assert out.stat().st_size > 0
    assert service.cli("image", "remove", "localhost/busybox:itest").returncode == 0
    loaded = service.cli("image", "load", str(out))
    assert loaded.stdout.split()[0] == "localhost/busybox:itest", loaded.stderr


def test_a_failed_pull_leaves_nothing(service: Service, registry: Registry, tmp_path: Path) -> None:
    # Four layers: with three at a time, the first three are stored before the fourth,
    # which the registry has lost, fails the pull.
    layout = tmp_path / "broken"
    layers = [
        mkimage.Layer(mkimage.tar_bytes(lambda t, i=i: mkimage.add_file(
            t, f"f{i}", secrets.token_bytes(64 * 1024)
        )))
        for i in range(4)
    ]  # fmt: skip
    desc = mkimage.write_image(layout, layers, config={"Cmd": ["/bin/sh"]})
    mkimage.write_index(layout, "v1", [desc], nested=False)
    registry.push(layout, "v1", "test/broken:v1")
    manifest = json.loads(
        (layout / "blobs" / "sha256" / desc["digest"].partition(":")[2]).read_bytes()
    )
    lost = manifest["layers"][-1]["digest"].partition(":")[2]
    (registry.storage / "blobs" / "sha256" / lost[:2] / lost / "data").unlink()

    service.start(f"--ccl-insecure-registries={registry.host}")
    before = store_files(service.home)
    failed = service.cli("image", "pull", f"{registry.host}/test/broken:v1")
    assert failed.returncode == 1
    assert failed.stderr.startswith("Error: "), failed.stderr
    assert store_files(service.home) == before
    listed = json.loads(service.cli("image", "--json", "list").stdout)
    assert [i["reference"] for i in listed] == ["localhost/busybox:itest"]
