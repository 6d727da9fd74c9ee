"""kill -9 in the middle of a layer download: nothing half-written counts, and the next
pull completes (resuming from the partial blob)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ocirt.image.reference import parse_digest
from ocirt.image.registry.auth import RegistryAccess
from ocirt.image.service import ImageService

from .conftest import Registry, mkimage

pytestmark = pytest.mark.integration

PULLER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from ocirt.image.registry.auth import RegistryAccess
    from ocirt.image.service import ImageService

    home, host, ref, big = sys.argv[1:5]

    def progress(p):
        # Stop (never finish) once half of the big layer is on disk; the test kills us.
        if p.layer.hex == big and p.done >= p.total // 2:
            print("HALF", flush=True)
            time.sleep(3600)

    ImageService(Path(home), RegistryAccess(insecure=frozenset({host}))).pull(ref, None, progress)
    """
)


def test_kill_9_mid_download_leaves_nothing_that_counts(
    registry: Registry, tmp_path: Path, home: Path
) -> None:
    layout = tmp_path / "big"
    payload = os.urandom(24 << 20)  # incompressible: the blob is as big as the data
    small = mkimage.Layer(mkimage.tar_bytes(lambda t: mkimage.add_file(t, "small", b"s")))
    big = mkimage.Layer(mkimage.tar_bytes(lambda t: mkimage.add_file(t, "big", payload)))
    desc = mkimage.write_image(layout, [small, big])
    mkimage.write_index(layout, "v1", [desc], nested=False)
    registry.push(layout, "v1", "test/big:v1")
    big_digest = parse_digest(mkimage.sha256(big.blob()))
    ref = f"{registry.host}/test/big:v1"

    proc = subprocess.Popen(
        [sys.executable, "-c", PULLER, str(home), registry.host, ref, big_digest.hex],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "HALF"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    service = ImageService(home, RegistryAccess(insecure=frozenset({registry.host})))
    store = service.store
    partial = store.root / "ingest" / f"sha256-{big_digest.hex}"
    assert partial.stat().st_size >= len(big.blob()) // 2  # a resumable partial blob
    assert not store.has_blob(big_digest)  # ... that does not count
    assert store.records() == []
    image = service.pull(ref)
    assert store.has_blob(big_digest)
    assert not partial.exists()
    rootfs = service.prepare_rootfs(image, "after-kill")
    try:
        assert (rootfs / "big").read_bytes() == payload
    finally:
        service.release_rootfs("after-kill")
