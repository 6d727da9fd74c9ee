"""The image service's one ocicrypt seam: cryptography loads only for encrypted images."""

from __future__ import annotations

import subprocess
import sys

_DAEMON_IMAGE_MODULES = (
    "ocirt.image.service",
    "ocirt.image.reference",
    "ocirt.image.manifest",
    "ocirt.image.registry.auth",
    "ocirt.image.registry.client",
    "ocirt.image.content.store",
    "ocirt.image.content.layout",
    "ocirt.image.content.pipeline",
    "ocirt.image.rootfs.unpack",
    "ocirt.image.rootfs.snapshot",
)


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_importing_the_image_service_does_not_load_cryptography() -> None:
    # Devices are small: the daemon imports ocirt.image at start without paying for crypto.
    imports = "; ".join(f"import {m}" for m in _DAEMON_IMAGE_MODULES)
    code = f"import sys; {imports}; print('cryptography' in sys.modules)"
    assert _run(code) == "False"


def test_the_seam_loads_ocicrypt_and_cryptography() -> None:
    code = (
        "import sys; from ocirt.image import service; "
        "print('cryptography' in sys.modules, 'ocirt.image.ocicrypt.layer' in sys.modules); "
        "layer = service.ocicrypt(); "
        "print('cryptography' in sys.modules, layer.__name__)"
    )
    assert _run(code).splitlines() == ["False False", "True ocirt.image.ocicrypt.layer"]
