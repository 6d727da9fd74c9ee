"""Distribution API v2 client over stdlib http.client/ssl. Does I/O (network).

Owns connections, TLS, redirects, the 401 dance and blob streaming with resume. It
returns bytes and chunk iterators; checking them is content/pipeline.py's job. Every socket,
TLS or HTTP failure leaves this module as an ocirt error that names the reference.

Rules it keeps (docs/oci-image-notes.md §1):
- ``Accept`` lists all four manifest/index types (distribution 2.8.2 hides OCI content
  otherwise);
- insecure registries (exact host match) use plain HTTP, then unverified TLS;
- redirects are followed at most 10 times and ``Authorization`` never goes to another
  host (spec.md l.825);
- tokens are cached per host and scope until they expire;
- a blob resumes with ``Range``; a 200 answer to a Range request means start again;
- every socket wait is bounded by the pull's `PullControl` (control.py): a stall timeout,
  an overall deadline, and cancellation, which shuts the sockets down. A stall, the
  deadline or a cancel ends the pull at once (PullInterrupted) and leaves the partial
  blob to the next pull; a dropped connection is resumed (``RESUME_ATTEMPTS``).
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from ocirt.errors import (
    AuthenticationError,
    DigestMismatch,
    ImageNotFound,
    OcirtError,
    RegistryUnavailable,
)
from ocirt.image.content.pipeline import digest_of, verify_bytes
from ocirt.image.manifest import ACCEPT, MAX_MANIFEST_BYTES
from ocirt.image.reference import Digest, Reference, parse_digest
from ocirt.image.registry.auth import (
    TOKEN_MARGIN,
    Challenge,
    RegistryAccess,
    parse_challenges,
    parse_token_reply,
    pull_scope,
    token_url,
)
from ocirt.image.registry.control import DEFAULT_STALL_TIMEOUT, PullControl

MAX_REDIRECTS = 10
CHUNK = 1 << 16
RESUME_ATTEMPTS = 3
USER_AGENT = "ocirt/0.1"


def tls_hint(host: str, exc: ssl.SSLError) -> str:
    """What to change when TLS with a registry fails: the two usual causes are a registry
    that speaks plain HTTP and one whose certificate comes from the user's own CA."""
    insecure = (
        f"list it in containers.insecure_registries of the daemon config "
        f"(or start the daemon with --ccl-insecure-registries={host})"
    )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"; if {host} uses a certificate of your own CA, set "
            f'containers.registry_configurations."{host}".transport.root_ca; '
            f"to skip the check, {insecure}"
        )
    return f"; if {host} is a plain-HTTP registry, {insecure}"


class RangeNotHonoured(RegistryUnavailable):
    """The server ignored a Range request: the blob must be read from its start."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    scheme: str
    context: ssl.SSLContext | None


class _Response:
    """An HTTP response that owns its connection. Reads go one socket read at a time
    (`read1`), each bounded by the pull's control, so that a trickle cannot hold a read
    beyond the deadline and a cancel is seen between reads."""

    def __init__(
        self,
        conn: http.client.HTTPConnection,
        resp: http.client.HTTPResponse,
        url: str,
        control: PullControl,
    ) -> None:
        self.conn = conn
        self.resp = resp
        self.url = url
        self.status = resp.status
        self.control = control

    def header(self, name: str) -> str | None:
        return self.resp.getheader(name)

    def headers_all(self, name: str) -> list[str]:
        return self.resp.headers.get_all(name) or []

    def read1(self, size: int) -> bytes:
        """At most ``size`` bytes, as soon as some arrived; b"" at the end. Raises
        TimeoutError on a stall (the caller names it) and PullInterrupted when over."""
        sock = self.conn.sock
        timeout = self.control.read_timeout()
        if sock is not None:
            sock.settimeout(timeout)
        data = self.resp.read1(size)
        self.control.check()
        return data

    def read(self, limit: int) -> bytes:
        data = bytearray()
        while chunk := self.read1(min(CHUNK, limit + 1 - len(data))):
            data += chunk
            if len(data) > limit:
                raise RegistryUnavailable(f"response from {self.url} is larger than {limit} bytes")
        return bytes(data)

    def close(self) -> None:
        sock = self.conn.sock
        if sock is not None:
            self.control.untrack(sock)
        self.resp.close()
        self.conn.close()


class RegistryClient:
    """One client per daemon; safe to use from several threads."""

    def __init__(self, settings: RegistryAccess, *, timeout: float = DEFAULT_STALL_TIMEOUT) -> None:
        """``timeout``: the stall timeout of a call made without a PullControl."""
        self._settings = settings
        self._timeout = timeout
        self._lock = threading.Lock()
        self._endpoints: dict[str, _Endpoint] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._basic: dict[str, str] = {}

    # ---- public ----

    def control(self, what: str) -> PullControl:
        """A control with this client's stall timeout and no deadline."""
        return PullControl(what, stall_timeout=self._timeout, deadline=None)

    def get_manifest(
        self, ref: Reference, obj: str | None = None, *, control: PullControl | None = None
    ) -> tuple[bytes, str, Digest]:
        """Fetch the manifest or index ``obj`` (tag or digest; default ``ref.object``).
        Returns the raw body, its Content-Type and its digest (checked)."""
        control = control or self.control(str(ref))
        target = obj or ref.object
        resp = self._request(
            ref, "GET", f"/v2/{ref.path}/manifests/{target}", {"Accept": ACCEPT}, target, control
        )
        try:
            body = self._read(resp, ref, MAX_MANIFEST_BYTES)
        finally:
            resp.close()
        content_type = resp.header("Content-Type") or ""
        if target.startswith(("sha256:", "sha512:")):
            digest = parse_digest(target)
            verify_bytes(body, digest, f"manifest of {ref}")
        else:
            digest = digest_of(body)
            header = resp.header("Docker-Content-Digest")
            if header and header != str(digest):
                raise DigestMismatch(
                    f"manifest of {ref}: registry says {header}, content is {digest}"
                )
        return body, content_type, digest

    def get_blob(
        self, ref: Reference, digest: Digest, limit: int, *, control: PullControl | None = None
    ) -> bytes:
        """A small blob (config) in memory, digest-checked."""
        control = control or self.control(str(ref))
        resp = self._request(ref, "GET", f"/v2/{ref.path}/blobs/{digest}", {}, str(digest), control)
        try:
            body = self._read(resp, ref, limit)
        finally:
            resp.close()
        verify_bytes(body, digest, f"blob of {ref}")
        return body

    def iter_blob(
        self,
        ref: Reference,
        digest: Digest,
        size: int,
        offset: int = 0,
        *,
        control: PullControl | None = None,
    ) -> Iterator[bytes]:
        """Stream blob bytes from ``offset``; a dropped connection resumes with Range.
        A stall, the deadline or a cancel of ``control`` ends it (PullInterrupted)."""
        control = control or self.control(str(ref))
        pos = offset
        failures = 0
        while pos < size or (pos == 0 and size == 0):
            headers = {"Range": f"bytes={pos}-"} if pos else {}
            resp = self._request(
                ref, "GET", f"/v2/{ref.path}/blobs/{digest}", headers, str(digest), control
            )
            try:
                if pos and resp.status != 206:
                    raise RangeNotHonoured(f"{ref}: registry ignored Range for blob {digest}")
                if pos and not (resp.header("Content-Range") or "").startswith(f"bytes {pos}-"):
                    raise RangeNotHonoured(f"{ref}: registry sent the wrong range of {digest}")
                while True:
                    try:
                        chunk = resp.read1(CHUNK)
                    except TimeoutError as exc:
                        raise control.timed_out(
                            f"while downloading {digest} (at {pos} of {size} bytes)"
                        ) from exc
                    except (OSError, http.client.HTTPException) as exc:
                        control.check()  # a cancel shuts the socket: not a network error
                        failures += 1
                        if failures > RESUME_ATTEMPTS:
                            raise RegistryUnavailable(
                                f"{ref}: download of {digest} keeps failing: {exc}"
                            ) from exc
                        break
                    if not chunk:
                        if pos < size:
                            failures += 1
                            if failures > RESUME_ATTEMPTS:
                                raise RegistryUnavailable(
                                    f"{ref}: download of {digest} ends early at {pos} bytes"
                                )
                        break
                    pos += len(chunk)
                    yield chunk
            finally:
                resp.close()
            if size == 0:
                return

    # ---- transport ----

    def _endpoint(self, host: str, control: PullControl) -> _Endpoint:
        with self._lock:
            known = self._endpoints.get(host)
        if known is not None:
            return known
        if self._settings.is_insecure(host):
            endpoint = self._probe_insecure(host, control)
        else:
            endpoint = _Endpoint("https", self._tls_context(host))
        with self._lock:
            self._endpoints[host] = endpoint
        return endpoint

    def _probe_insecure(self, host: str, control: PullControl) -> _Endpoint:
        # Kanto: HTTP first, then HTTPS without verification.
        plain = _Endpoint("http", None)
        try:
            resp = self._open(plain, "GET", f"http://{host}/v2/", {}, control)
            resp.close()
            return plain
        except (OSError, http.client.HTTPException):
            control.check()
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return _Endpoint("https", ctx)

    def _tls_context(self, host: str) -> ssl.SSLContext:
        transport = self._settings.config_for(host).transport
        try:
            ctx = ssl.create_default_context()
            if transport.root_ca:
                ctx.load_verify_locations(cafile=transport.root_ca)
            if transport.client_cert:
                ctx.load_cert_chain(transport.client_cert, transport.client_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryUnavailable(f"bad TLS settings for registry {host}: {exc}") from exc
        return ctx

    def _open(
        self,
        endpoint: _Endpoint,
        method: str,
        url: str,
        headers: Mapping[str, str],
        control: PullControl,
    ) -> _Response:
        parts = urllib.parse.urlsplit(url)
        conn: http.client.HTTPConnection
        timeout = control.read_timeout()
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(
                parts.netloc, timeout=timeout, context=endpoint.context
            )
        else:
            conn = http.client.HTTPConnection(parts.netloc, timeout=timeout)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.connect()
            if conn.sock is not None:
                control.track(conn.sock)  # from here on a cancel wakes any wait
            control.check()
            conn.request(method, target, headers={"User-Agent": USER_AGENT, **headers})
            return _Response(conn, conn.getresponse(), url, control)
        except BaseException:
            if conn.sock is not None:
                control.untrack(conn.sock)
            conn.close()
            raise

    def _send(
        self,
        endpoint: _Endpoint,
        host: str,
        method: str,
        url: str,
        headers: dict[str, str],
        auth: str | None,
        control: PullControl,
    ) -> _Response:
        """Send, following redirects; Authorization only ever goes to ``host``."""
        for _ in range(MAX_REDIRECTS + 1):
            netloc = urllib.parse.urlsplit(url).netloc
            same_host = netloc == host
            sent = dict(headers)
            if auth and same_host:
                sent["Authorization"] = auth
            target_endpoint = endpoint if same_host else _Endpoint("https", None)
            resp = self._open(target_endpoint, method, url, sent, control)
            if resp.status in (301, 302, 303, 307, 308):
                location = resp.header("Location")
                resp.close()
                if not location:
                    raise RegistryUnavailable(f"redirect without Location from {url}")
                url = urllib.parse.urljoin(url, location)
                if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                    raise RegistryUnavailable(f"redirect to unsupported URL {url}")
                continue
            return resp
        raise RegistryUnavailable(f"too many redirects from {url}")

    def _request(
        self,
        ref: Reference,
        method: str,
        path: str,
        headers: dict[str, str],
        what: str,
        control: PullControl,
    ) -> _Response:
        host = ref.contact_host
        scope = pull_scope(ref.path)
        try:
            endpoint = self._endpoint(host, control)
            url = f"{endpoint.scheme}://{host}{path}"
            auth = self._cached_auth(host, scope)
            resp = self._send(endpoint, host, method, url, headers, auth, control)
            if resp.status == 401:
                challenges = [
                    c for v in resp.headers_all("WWW-Authenticate") for c in parse_challenges(v)
                ]
                resp.close()
                auth = self._authenticate(ref, endpoint, host, scope, challenges, control)
                resp = self._send(endpoint, host, method, url, headers, auth, control)
        except OcirtError:
            raise
        except TimeoutError as exc:
            raise control.timed_out(f"waiting for registry {host} to answer for {what}") from exc
        except ssl.SSLError as exc:
            control.check()
            raise RegistryUnavailable(
                f"{ref}: TLS with {host} failed: {exc}{tls_hint(host, exc)}"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            control.check()  # a cancel shuts the socket: not a network error
            raise RegistryUnavailable(f"{ref}: cannot reach registry {host}: {exc}") from exc
        if resp.status in (200, 206):
            return resp
        status = resp.status
        resp.close()
        if status == 401:
            raise AuthenticationError(f"{ref}: registry {host} refused the credentials")
        if status == 403:
            raise AuthenticationError(f"{ref}: access to {what} denied by {host}")
        if status == 404:
            raise ImageNotFound(f"{ref}: {what} not found in registry {host}")
        raise RegistryUnavailable(f"{ref}: registry {host} answered {status} for {what}")

    def _read(self, resp: _Response, ref: Reference, limit: int) -> bytes:
        try:
            return resp.read(limit)
        except TimeoutError as exc:
            raise resp.control.timed_out(f"while reading {resp.url}") from exc
        except (OSError, http.client.HTTPException) as exc:
            resp.control.check()
            raise RegistryUnavailable(f"{ref}: reading from registry failed: {exc}") from exc

    # ---- auth ----

    def _cached_auth(self, host: str, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get((host, scope))
            if token is not None and token[1] > time.monotonic():
                return f"Bearer {token[0]}"
            return self._basic.get(host)

    def _authenticate(
        self,
        ref: Reference,
        endpoint: _Endpoint,
        host: str,
        scope: str,
        challenges: list[Challenge],
        control: PullControl,
    ) -> str:
        creds = self._settings.config_for(ref.domain).credentials
        if creds is None:
            creds = self._settings.config_for(host).credentials
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        if bearer is not None:
            scopes = [bearer.params["scope"]] if bearer.params.get("scope") else [scope]
            url = token_url(bearer, scopes)
            headers = {"Accept": "application/json"}
            realm_host = urllib.parse.urlsplit(url).netloc
            # The realm is the registry's own choice, so the registry's TLS trust applies;
            # credentials go to the realm host only.
            basic = creds.basic() if creds is not None else None
            resp = self._send(endpoint, realm_host, "GET", url, headers, basic, control)
            try:
                if resp.status in (401, 403):
                    raise AuthenticationError(
                        f"{ref}: token server {realm_host} refused the credentials"
                    )
                if resp.status != 200:
                    raise RegistryUnavailable(
                        f"{ref}: token server {realm_host} answered {resp.status}"
                    )
                token = parse_token_reply(self._read(resp, ref, 1 << 20))
            finally:
                resp.close()
            expires = time.monotonic() + max(token.expires_in - TOKEN_MARGIN, 1)
            with self._lock:
                self._tokens[(host, scope)] = (token.value, expires)
            return f"Bearer {token.value}"
        if any(c.scheme == "basic" for c in challenges):
            if creds is None:
                raise AuthenticationError(f"{ref}: registry {host} requires credentials")
            with self._lock:
                self._basic[host] = creds.basic()
            return creds.basic()
        raise AuthenticationError(f"{ref}: registry {host} sent no usable auth challenge")
