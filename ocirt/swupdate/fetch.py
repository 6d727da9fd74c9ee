"""Artifact download: the port the runner uses, and its HTTP(S) adapter. Does I/O.

Kanto reads an artifact with a bare `http.Get` and `ReadAll`: no size bound, no timeout,
no status check, and a download that breaks starts again from nothing. Here:

- the body is bounded by the artifact's `size` (and by MAX_ARTIFACT, since an artifact
  is a container descriptor): a server that announces or sends more is refused;
- a connection that sends nothing for `stall_timeout` seconds is dropped and the
  download resumed with `Range` from what the partial file holds, a few times;
- the partial file outlives the daemon, so an install resumed after a restart goes on
  from where the last one stopped;
- HTTPS trusts what the registry client trusts for that host (`registry_configurations`
  root CA and client certificate, `insecure_registries` without verification).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ocirt.errors import Unavailable

if TYPE_CHECKING:
    import http.client
    import ssl

    from ocirt.image.registry.auth import RegistryAccess

# An artifact is a Kanto container descriptor; deployment reads those up to 1 MiB too.
MAX_ARTIFACT = 1024 * 1024
STALL_TIMEOUT = 30.0
RESUME_ATTEMPTS = 3
MAX_REDIRECTS = 5
CHUNK = 1 << 14
USER_AGENT = "ocirt/0.1"


class DownloadError(Unavailable):
    """The artifact could not be fetched (FINISHED_ERROR)."""


class ArtifactSource(Protocol):
    def fetch(self, url: str, partial: Path, size: int, /) -> bytes:
        """The whole artifact; `partial` holds what was fetched so far and is extended."""
        ...


class _Restart(Exception):
    """The server ignored our Range: start again from the first byte."""


class HttpArtifactSource:
    """HTTP(S) downloads with the registry client's TLS settings."""

    def __init__(
        self,
        registries: RegistryAccess | None = None,
        *,
        stall_timeout: float = STALL_TIMEOUT,
        max_size: int = MAX_ARTIFACT,
    ) -> None:
        self._registries = registries
        self._stall_timeout = stall_timeout
        self._max_size = max_size

    def fetch(self, url: str, partial: Path, size: int, /) -> bytes:
        limit = size or self._max_size
        if size > self._max_size:
            raise DownloadError(
                f"artifact {url} of {size} bytes is larger than the {self._max_size} bytes allowed"
            )
        failures = 0
        while True:
            have = partial.stat().st_size if partial.exists() else 0
            if have > limit:
                partial.unlink()
                have = 0
            if size and have == size:
                return partial.read_bytes()
            try:
                if self._download(url, partial, have, limit):
                    return partial.read_bytes()
            except _Restart:
                partial.unlink(missing_ok=True)
            except (OSError, _http_errors()) as exc:
                failures += 1
                if failures > RESUME_ATTEMPTS:
                    raise DownloadError(f"download of {url} failed: {_reason(exc)}") from exc

    def _download(self, url: str, partial: Path, offset: int, limit: int) -> bool:
        """Append to `partial` from `offset`; True when the body ended (the whole artifact)."""
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        conn, resp = self._open(url, headers)
        try:
            if offset and resp.status == 200:
                raise _Restart()
            if resp.status == 206:
                content_range = resp.getheader("Content-Range") or ""
                if not content_range.startswith(f"bytes {offset}-"):
                    raise _Restart()
            elif resp.status != 200:
                raise DownloadError(f"download of {url} failed: HTTP {resp.status} {resp.reason}")
            length = resp.getheader("Content-Length")
            if length is not None and length.isdigit() and offset + int(length) > limit:
                announced = offset + int(length)
                raise DownloadError(
                    f"artifact {url} is larger than {limit} bytes ({announced} announced)"
                )
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                have = offset
                while True:
                    # read1: what has arrived, so a stalled server leaves its bytes on disk
                    chunk = resp.read1(CHUNK)
                    if not chunk:
                        break
                    have += len(chunk)
                    if have > limit:
                        raise DownloadError(f"artifact {url} is larger than {limit} bytes")
                    os.write(fd, chunk)
            finally:
                os.close(fd)
            if length is not None and length.isdigit() and have < offset + int(length):
                raise ConnectionError(f"connection closed after {have} bytes")
            return True
        finally:
            resp.close()
            conn.close()

    def _open(
        self, url: str, headers: dict[str, str]
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        import http.client

        for _ in range(MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise DownloadError(f"unsupported artifact URL {url!r}")
            conn: http.client.HTTPConnection
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(
                    parts.netloc, timeout=self._stall_timeout, context=self._tls(parts.netloc)
                )
            else:
                conn = http.client.HTTPConnection(parts.netloc, timeout=self._stall_timeout)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request("GET", target, headers=headers)
                resp = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.getheader("Location")
                resp.close()
                conn.close()
                if not location:
                    raise DownloadError(f"redirect without Location from {url}")
                url = urllib.parse.urljoin(url, location)
                continue
            return conn, resp
        raise DownloadError(f"too many redirects from {url}")

    def _tls(self, host: str) -> ssl.SSLContext:
        import ssl

        context = ssl.create_default_context()
        if self._registries is None:
            return context
        if self._registries.is_insecure(host):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        transport = self._registries.config_for(host).transport
        try:
            if transport.root_ca:
                context.load_verify_locations(cafile=transport.root_ca)
            if transport.client_cert:
                context.load_cert_chain(transport.client_cert, transport.client_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise DownloadError(f"bad TLS settings for {host}: {_reason(exc)}") from exc
        return context


def _http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no data for too long (stalled)"
    return str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc)
