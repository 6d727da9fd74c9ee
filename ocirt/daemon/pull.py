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

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocirt import errors
from ocirt.errors import ImageError, OcirtError

if TYPE_CHECKING:
    from ocirt.image.registry.auth import RegistryAccess


class HelperPull:
    """Runs one helper per pull for the image store under `home_dir`. Concurrent pulls of
    one reference share one helper (one download); `cancel_all` ends the helpers under
    way (their partial downloads stay for the next pull to resume)."""

    def __init__(
        self,
        home_dir: Path,
        access: RegistryAccess,
        stall_timeout: float | None = None,
        pull_deadline: float | None = None,
    ) -> None:
        self.home_dir = Path(home_dir)
        self.access = access
        self.stall_timeout = stall_timeout
        self.pull_deadline = pull_deadline
        self._lock = threading.Lock()
        # reference -> the pull under way: its helper, and what its waiters get.
        self._running: dict[str, _Running] = {}
        # The helper's command line (-P: not the working directory first on the path).
        self.command: list[str] = [sys.executable, "-P", "-m", "ocirt.daemon.pull"]

    def cancel_all(self, reason: str = "cancelled") -> int:
        """End every helper under way; their pulls fail with PullCancelled(reason)."""
        with self._lock:
            running = list(self._running.values())
            for pull in running:
                pull.cancelled = reason
        for pull in running:
            if pull.proc is not None:
                _kill_group(pull.proc)
        return len(running)

    def __call__(self, reference: str, keys: Sequence[str], recipients: Sequence[str]) -> None:
        with self._lock:
            shared = self._running.get(reference)
            if shared is None:
                own = self._running[reference] = _Running()
        if shared is not None:
            # Another create pulls this image now: wait for it, then the caller finds
            # the image in the store (or pulls again, with its own keys, if it failed).
            shared.done.wait()
            if shared.cancelled is not None:
                raise _cancelled(shared.cancelled)
            return
        try:
            self._pull(own, reference, keys, recipients)
        finally:
            with self._lock:
                del self._running[reference]
            own.done.set()

    def _pull(
        self, own: _Running, reference: str, keys: Sequence[str], recipients: Sequence[str]
    ) -> None:
        request = {
            "home": str(self.home_dir),
            "stallTimeout": self.stall_timeout,
            "deadline": self.pull_deadline,
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
            proc = subprocess.Popen(
                self.command,
                # Its own process group: a cancel ends what it runs too (gpg, say).
                start_new_session=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise ImageError(f"cannot run the pull helper: {exc}") from exc
        with self._lock:
            own.proc = proc
            cancelled = own.cancelled
        if cancelled is not None:
            _kill_group(proc)
        stdout, stderr = proc.communicate(json.dumps(request).encode())
        if own.cancelled is not None:
            raise _cancelled(own.cancelled)
        try:
            answer = json.loads(stdout)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("ok") is True:
            return
        if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
            raise _rebuild(answer["error"])
        tail = stderr.decode(errors="replace").strip()[-2000:]
        raise ImageError(f"the pull of {reference} failed (helper exit {proc.returncode}): {tail}")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.returncode is None:  # not reaped yet: its pid is still its own
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)


class _Running:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.cancelled: str | None = None
        self.done = threading.Event()


def _cancelled(reason: str) -> OcirtError:
    from ocirt.image.registry.control import PullCancelled

    return PullCancelled(reason)


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
        timeouts: dict[str, Any] = {}
        if request.get("stallTimeout") is not None:
            timeouts["stall_timeout"] = float(request["stallTimeout"])
        if request.get("deadline") is not None:
            timeouts["pull_deadline"] = float(request["deadline"])
        service = ImageService(Path(request["home"]), _access(request), **timeouts)
        service.pull(request["reference"], keys)
        answer: dict[str, object] = {"ok": True}
    except OcirtError as exc:
        answer = {"ok": False, "error": {"type": type(exc).__name__, "message": exc.message}}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        answer = {"ok": False, "error": {"type": "ImageError", "message": str(exc)}}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
