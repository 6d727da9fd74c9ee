"""PGP key unwrapping for ocicrypt's `org.opencontainers.image.enc.keys.pgp`, through gpg.

ocicrypt writes a binary OpenPGP message (PKESK, SEIPD with MDC, literal data) for each
recipient key (docs/oci-image-notes.md §3 "PGP"). Rather than carry an OpenPGP implementation
(secret key S2K, packet grammar, MDC, every public-key algorithm), ocirt hands the message to GnuPG:
each secret key ring is imported into a private, temporary GNUPGHOME, the message is
decrypted there with the ring's passphrase fed through a pipe, and the home and its agent are
removed afterwards. Does I/O: runs `gpg` (Debian `gnupg`) and writes the temporary home.
Every failure is a DecryptError.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from ocirt.errors import DecryptError
from ocirt.image.ocicrypt.keys import GpgKeyring

# Private options are a few hundred bytes; gpg stops at this much output, which defuses a
# compressed packet that inflates without bound.
_MAX_OUTPUT = 1 << 20
# gpg and its agent answer in well under a second; the bound only stops a wedged agent from
# holding a pull forever.
_TIMEOUT = 60.0
# Far below the pipe buffer (64 KiB on Linux); gpg reads one line from the descriptor.
_MAX_PASSPHRASE = 4096


def decrypt(blob: bytes, keyrings: Sequence[GpgKeyring]) -> bytes:
    """The plaintext of the OpenPGP message `blob`, opened by the first ring that works."""
    gpg = shutil.which("gpg2") or shutil.which("gpg")
    if gpg is None:
        raise DecryptError("gpg is not installed: install gnupg to open PGP-encrypted layers")
    problems: list[str] = []
    for keyring in keyrings:
        try:
            return _decrypt_with(gpg, blob, keyring)
        except DecryptError as exc:
            problems.append(exc.message)
    detail = f" ({'; '.join(dict.fromkeys(problems))})" if problems else ""
    raise DecryptError(f"no GPG key opens the layer key{detail}")


def _decrypt_with(gpg: str, blob: bytes, keyring: GpgKeyring) -> bytes:
    home = tempfile.mkdtemp(prefix="ocirt-gpg-")
    try:
        ring = os.path.join(home, "ring")
        message = os.path.join(home, "message")
        for path, data in ((ring, keyring.data), (message, blob)):
            with open(path, "wb") as handle:
                handle.write(data)
        _run(gpg, home, ["--import", ring], keyring.passphrase, f"import {keyring.source}")
        return _run(
            gpg,
            home,
            ["--max-output", str(_MAX_OUTPUT), "--output", "-", "--decrypt", message],
            keyring.passphrase,
            f"decrypt with {keyring.source}",
        )
    except OSError as exc:
        raise DecryptError(f"cannot run gpg: {exc}") from exc
    finally:
        _stop_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def _run(gpg: str, home: str, args: list[str], passphrase: bytes | None, what: str) -> bytes:
    command = [
        gpg,
        "--homedir",
        home,
        "--batch",
        "--no-tty",
        "--no-options",
        "--no-auto-key-retrieve",
        "--pinentry-mode",
        "loopback",
    ]
    pass_fds: tuple[int, ...] = ()
    read_end = -1
    if passphrase is not None:
        # A pipe, not argv or a file: the passphrase never shows in ps or on disk. It is
        # bounded, so the whole of it fits in the pipe before gpg starts.
        if len(passphrase) > _MAX_PASSPHRASE or b"\n" in passphrase:
            raise DecryptError("the GPG passphrase is too long or spans lines")
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as writer:
            writer.write(passphrase + b"\n")
        command += ["--passphrase-fd", str(read_end)]
        pass_fds = (read_end,)
    try:
        result = subprocess.run(
            [*command, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            pass_fds=pass_fds,
            timeout=_TIMEOUT,
            env={**os.environ, "GNUPGHOME": home, "LC_ALL": "C"},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DecryptError(f"gpg did not finish ({what})") from exc
    finally:
        if read_end >= 0:
            os.close(read_end)
    if result.returncode != 0:
        raise DecryptError(f"gpg could not {what}: {_reason(result.stderr)}")
    return result.stdout


def _reason(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace")
    for needle, reason in (
        ("Bad passphrase", "wrong passphrase"),
        ("No passphrase given", "the key needs a passphrase"),
        ("No secret key", "the key ring holds no key the layer is encrypted for"),
        ("exceeded", "the message is too large"),
    ):
        if needle in text:
            return reason
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "unknown error"


def _stop_agent(home: str) -> None:
    gpgconf = shutil.which("gpgconf")
    if gpgconf is None:
        return
    env = {**os.environ, "GNUPGHOME": home}
    for action in (["--kill", "gpg-agent"], ["--remove-socketdir"]):
        # The home is removed anyway; an agent that survives exits when its socket goes.
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(
                [gpgconf, *action], env=env, capture_output=True, timeout=_TIMEOUT, check=False
            )
