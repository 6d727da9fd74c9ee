"""Pulls in a short-lived helper process, so the daemon never maps what a pull needs.
Does I/O (a child process; the helper itself: the network and the image store).

A pull imports the registry client, http.client with the email package, hashlib's
OpenSSL, tarfile and zlib, and leaves heap fragments of its buffers behind: about 7 MB a
daemon would keep for good, since modules cannot be unloaded (collecting and trimming
the heap gave back 0.5 of them; bench/daemon_rss_pull.py). The helper
(`python3 -P -m ocirt.daemon.pull`) pulls into the daemon's store and exits; the daemon
then finds the image there as if it had been present. Its request comes on stdin (it
carries registry passwords), its answer on stdout, one JSON document each:

    {"home": ..., "reference": ..., "keys": [...], "recipients": [...],
     "insecure": [...], "registries": {host: {"user", "password", "rootCa",
     "clientCert", "clientKey"}}}
    {"ok": true} | {"ok": false, "error": {"type": "ImageNotFound", "message": ...}}

An error keeps its class of `ocirt.errors` (and so its Ditto status) across the pipe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocirt import errors
from ocirt.errors import ImageError, OcirtError

if TYPE_CHECKING:
    from ocirt.image.registry.auth import RegistryAccess


class HelperPull:
    """Runs one helper per pull for the image store under `home_dir`."""

    def __init__(self, home_dir: Path, access: RegistryAccess) -> None:
        self.home_dir = Path(home_dir)
        self.access = access

    def __call__(self, reference: str, keys: Sequence[str], recipients: Sequence[str]) -> None:
        request = {
            "home": str(self.home_dir),
            "reference": reference,
            "keys": list(keys),
            "recipients": list(recipients),
            "insecure": sorted(self.access.insecure),
            "registries": {
                host: {
                    "user": c.credentials.user_id if c.credentials else "",
                    "password": c.credentials.password if c.credentials else "",
                    "rootCa": c.transport.root_ca,
                    "clientCert": c.transport.client_cert,
                    "clientKey": c.transport.client_key,
                }
                for host, c in self.access.configs.items()
            },
        }
        try:
            done = subprocess.run(
                # -P: not the working directory first on the path.
                [sys.executable, "-P", "-m", "ocirt.daemon.pull"],
                input=json.dumps(request).encode(),
                capture_output=True,
                check=False,
            )
        except OSError as exc:
            raise ImageError(f"cannot run the pull helper: {exc}") from exc
        try:
            answer = json.loads(done.stdout)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("ok") is True:
            return
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            raise _rebuild(answer["error"])
        tail = done.stderr.decode(errors="replace").strip()[-2000:]
        raise ImageError(f"the pull of {reference} failed (helper exit {done.returncode}): {tail}")


def _rebuild(error: dict[str, Any]) -> OcirtError:
    message = str(error.get("message", "pull failed"))
    kind = getattr(errors, str(error.get("type", "")), None)
    if isinstance(kind, type) and issubclass(kind, OcirtError):
        try:
            return kind(message)
        except TypeError:
            pass
    return ImageError(message)


def _access(request: dict[str, Any]) -> RegistryAccess:
    from ocirt.image.registry.auth import Credentials, RegistryAccess, RegistryConfig, Transport

    return RegistryAccess(
        frozenset(str(h) for h in request.get("insecure", ())),
        {
            str(host): RegistryConfig(
                Credentials(str(r["user"]), str(r["password"])) if r.get("user") else None,
                Transport(str(r["rootCa"]), str(r["clientCert"]), str(r["clientKey"])),
            )
            for host, r in dict(request.get("registries", {})).items()
        },
    )


def main() -> int:
    """The helper: one pull, its answer on stdout."""
    try:
        request = json.loads(sys.stdin.buffer.read())
        from ocirt.image.service import ImageService, load_decrypt_keys

        keys = (
            load_decrypt_keys(request["keys"], request["recipients"])
            if request.get("keys") or request.get("recipients")
            else None
        )
        ImageService(Path(request["home"]), _access(request)).pull(request["reference"], keys)
        answer: dict[str, object] = {"ok": True}
    except OcirtError as exc:
        answer = {"ok": False, "error": {"type": type(exc).__name__, "message": exc.message}}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        answer = {"ok": False, "error": {"type": "ImageError", "message": str(exc)}}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
