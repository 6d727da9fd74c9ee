"""The registry client against a scripted HTTP server on 127.0.0.1 (in this process).

Each test scripts what the registry answers per path and checks what the client sent
and what it made of the answers: 401 challenges, redirects, Range resume, bad digests.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ocirt.errors import (
    AuthenticationError,
    DigestMismatch,
    ImageError,
    ImageNotFound,
    RegistryUnavailable,
)
from ocirt.image.manifest import MAX_MANIFEST_BYTES, OCI_MANIFEST, parse_document
from ocirt.image.reference import Digest, Reference, parse_reference
from ocirt.image.registry.auth import Credentials, RegistryAccess, RegistryConfig, Transport
from ocirt.image.registry.client import (
    MAX_REDIRECTS,
    RESUME_ATTEMPTS,
    RangeNotHonoured,
    RegistryClient,
)

Handler = http.server.BaseHTTPRequestHandler
Route = Callable[[Handler], None]


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Registry:
    """A scripted registry: `routes` maps a path (query stripped) to what it answers."""

    host: str = ""
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?")[0] == path]


def _handler_for(registry: Registry) -> type[Handler]:
    class Script(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            registry.seen.append(Seen("GET", self.path, headers))
            route = registry.routes.get(self.path.split("?")[0])
            if route is None:
                reply(self, 404)
            else:
                route(self)

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Script


@pytest.fixture
def start_registry() -> Iterator[Callable[[], Registry]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start() -> Registry:
        registry = Registry()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(registry))
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        registry.host = f"127.0.0.1:{server.server_address[1]}"
        registry.routes["/v2/"] = lambda h: reply(h, 200)
        return registry

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def registry(start_registry: Callable[[], Registry]) -> Registry:
    return start_registry()


def reply(
    h: Handler, status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> None:
    h.send_response(status)
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def cut_off(h: Handler, body: bytes, sent: int, headers: dict[str, str] | None = None) -> None:
    """Promise all of `body`, send `sent` bytes of it, then drop the connection."""
    h.send_response(200 if "Content-Range" not in (headers or {}) else 206)
    for name, value in (headers or {}).items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body[:sent])
    h.wfile.flush()
    h.connection.shutdown(socket.SHUT_RDWR)
    h.close_connection = True


def dg(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def client_for(*registries: Registry, **configs: RegistryConfig) -> RegistryClient:
    access = RegistryAccess(
        insecure=frozenset(r.host for r in registries),
        configs={registries[0].host: configs["config"]} if "config" in configs else {},
    )
    return RegistryClient(access, timeout=10)


def ref_on(registry: Registry, tail: str = "library/app:1.0") -> Reference:
    return parse_reference(f"{registry.host}/{tail}")


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": str(dg(b"{}")),
            "size": 2,
        },
        "layers": [],
    }
).encode()


# ---- manifests ----


def test_manifest_by_tag_asks_for_every_manifest_type_and_returns_its_digest(
    registry: Registry,
) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(
        h, 200, MANIFEST, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": str(dg(MANIFEST))}
    )
    body, content_type, digest = client_for(registry).get_manifest(ref_on(registry))
    assert (body, content_type, digest) == (MANIFEST, OCI_MANIFEST, dg(MANIFEST))
    (sent,) = registry.requests("/v2/library/app/manifests/1.0")
    accept = sent.headers["accept"]
    for media_type in (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ):
        assert media_type in accept
    assert sent.headers["user-agent"].startswith("ocirt/")


def test_a_registry_digest_header_that_disagrees_is_a_digest_mismatch(registry: Registry) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(
        h, 200, MANIFEST, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": str(dg(b"x"))}
    )
    with pytest.raises(DigestMismatch, match="registry says"):
        client_for(registry).get_manifest(ref_on(registry))


def test_a_manifest_fetched_by_digest_must_hash_to_it(registry: Registry) -> None:
    wanted = dg(MANIFEST)
    registry.routes[f"/v2/library/app/manifests/{wanted}"] = lambda h: reply(
        h, 200, MANIFEST + b" ", {"Content-Type": OCI_MANIFEST}
    )
    with pytest.raises(DigestMismatch):
        client_for(registry).get_manifest(ref_on(registry, f"library/app@{wanted}"))


def test_a_manifest_with_a_wrong_content_type_is_refused_by_its_parser(
    registry: Registry,
) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(
        h, 200, b"<html>login</html>", {"Content-Type": "text/html"}
    )
    body, content_type, _ = client_for(registry).get_manifest(ref_on(registry))
    assert content_type == "text/html"
    with pytest.raises(ImageError):
        parse_document(body, content_type)


def test_an_oversized_manifest_is_refused(registry: Registry) -> None:
    huge = b"x" * (MAX_MANIFEST_BYTES + 1)
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(h, 200, huge)
    with pytest.raises(RegistryUnavailable, match="larger than"):
        client_for(registry).get_manifest(ref_on(registry))


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (404, ImageNotFound, "not found in registry"),
        (403, AuthenticationError, "denied"),
        (500, RegistryUnavailable, "answered 500"),
    ],
)
def test_error_statuses_become_ocirt_errors(
    registry: Registry, status: int, error: type[Exception], message: str
) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(h, status)
    with pytest.raises(error, match=message):
        client_for(registry).get_manifest(ref_on(registry))


def test_an_unreachable_registry_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"
    client = RegistryClient(RegistryAccess(insecure=frozenset({host})), timeout=5)
    with pytest.raises(RegistryUnavailable, match="cannot reach"):
        client.get_manifest(parse_reference(f"{host}/library/app:1.0"))


def test_bad_tls_settings_are_reported_before_any_connection() -> None:
    access = RegistryAccess(
        insecure=frozenset(),
        configs={"registry.invalid": RegistryConfig(transport=Transport(root_ca="/nonexistent"))},
    )
    with pytest.raises(RegistryUnavailable, match="bad TLS settings"):
        RegistryClient(access).get_manifest(parse_reference("registry.invalid/app:1"))


# ---- blobs ----


def test_a_config_blob_is_digest_checked(registry: Registry) -> None:
    good, bad = b'{"a":1}', b'{"a":2}'
    registry.routes[f"/v2/library/app/blobs/{dg(good)}"] = lambda h: reply(h, 200, good)
    registry.routes[f"/v2/library/app/blobs/{dg(bad)}"] = lambda h: reply(h, 200, good)
    client = client_for(registry)
    assert client.get_blob(ref_on(registry), dg(good), 1024) == good
    with pytest.raises(DigestMismatch):
        client.get_blob(ref_on(registry), dg(bad), 1024)


def test_a_dropped_download_resumes_with_range(registry: Registry) -> None:
    blob = bytes(range(256)) * 1024
    path = f"/v2/library/app/blobs/{dg(blob)}"

    def serve(h: Handler) -> None:
        asked = h.headers.get("Range")
        if asked is None:
            cut_off(h, blob, 100_000)
            return
        start = int(asked.removeprefix("bytes=").removesuffix("-"))
        rest = blob[start:]
        reply(h, 206, rest, {"Content-Range": f"bytes {start}-{len(blob) - 1}/{len(blob)}"})

    registry.routes[path] = serve
    got = b"".join(client_for(registry).iter_blob(ref_on(registry), dg(blob), len(blob)))
    assert got == blob
    ranges = [s.headers.get("range") for s in registry.requests(path)]
    assert ranges[0] is None
    assert len(ranges) == 2
    assert ranges[1] is not None
    resumed_at = int(ranges[1].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= 100_000


def test_a_download_can_start_at_an_offset(registry: Registry) -> None:
    blob = b"0123456789"
    path = f"/v2/library/app/blobs/{dg(blob)}"
    registry.routes[path] = lambda h: reply(h, 206, blob[4:], {"Content-Range": "bytes 4-9/10"})
    chunks = client_for(registry).iter_blob(ref_on(registry), dg(blob), len(blob), offset=4)
    assert b"".join(chunks) == b"456789"
    assert [s.headers.get("range") for s in registry.requests(path)] == ["bytes=4-"]


def test_a_registry_that_ignores_range_means_start_again(registry: Registry) -> None:
    blob = b"0123456789"
    registry.routes[f"/v2/library/app/blobs/{dg(blob)}"] = lambda h: reply(h, 200, blob)
    with pytest.raises(RangeNotHonoured, match="ignored Range"):
        list(client_for(registry).iter_blob(ref_on(registry), dg(blob), len(blob), offset=4))


def test_a_registry_that_sends_another_range_means_start_again(registry: Registry) -> None:
    blob = b"0123456789"
    registry.routes[f"/v2/library/app/blobs/{dg(blob)}"] = lambda h: reply(
        h, 206, blob, {"Content-Range": "bytes 0-9/10"}
    )
    with pytest.raises(RangeNotHonoured, match="wrong range"):
        list(client_for(registry).iter_blob(ref_on(registry), dg(blob), len(blob), offset=4))


def test_a_download_that_keeps_failing_gives_up(registry: Registry) -> None:
    blob = b"x" * 1000
    path = f"/v2/library/app/blobs/{dg(blob)}"

    def serve(h: Handler) -> None:
        asked = h.headers.get("Range")
        start = 0 if asked is None else int(asked.removeprefix("bytes=").removesuffix("-"))
        headers = {"Content-Range": f"bytes {start}-999/1000"} if start else None
        cut_off(h, blob[start:], 10, headers)  # ten more bytes each time, then the line drops

    registry.routes[path] = serve
    got = bytearray()
    with pytest.raises(RegistryUnavailable, match="ends early"):
        for chunk in client_for(registry).iter_blob(ref_on(registry), dg(blob), len(blob)):
            got += chunk
    assert len(registry.requests(path)) == RESUME_ATTEMPTS + 1
    assert bytes(got) == blob[: len(got)]


def test_an_empty_blob_is_one_request(registry: Registry) -> None:
    path = f"/v2/library/app/blobs/{dg(b'')}"
    registry.routes[path] = lambda h: reply(h, 200, b"")
    assert list(client_for(registry).iter_blob(ref_on(registry), dg(b""), 0)) == []
    assert len(registry.requests(path)) == 1


# ---- redirects ----


def test_a_redirect_to_another_host_never_carries_authorization(
    start_registry: Callable[[], Registry],
) -> None:
    registry, storage = start_registry(), start_registry()
    blob = b"layer bytes"
    path = f"/v2/library/app/blobs/{dg(blob)}"

    def challenge_or_redirect(h: Handler) -> None:
        if "Authorization" not in h.headers:
            reply(h, 401, headers={"WWW-Authenticate": 'Basic realm="r"'})
        else:
            reply(h, 307, headers={"Location": f"http://{storage.host}/cdn/blob?sig=1"})

    registry.routes[path] = challenge_or_redirect
    storage.routes["/cdn/blob"] = lambda h: reply(h, 200, blob)
    creds = Credentials("user", "secret")
    client = client_for(registry, storage, config=RegistryConfig(credentials=creds))
    assert client.get_blob(ref_on(registry), dg(blob), 1024) == blob
    assert registry.requests(path)[-1].headers["authorization"] == creds.basic()
    (fetched,) = storage.requests("/cdn/blob")
    assert fetched.path == "/cdn/blob?sig=1"
    assert "authorization" not in fetched.headers


def test_relative_redirects_are_followed_on_the_same_host(registry: Registry) -> None:
    blob = b"abc"
    registry.routes[f"/v2/library/app/blobs/{dg(blob)}"] = lambda h: reply(
        h, 302, headers={"Location": "/elsewhere"}
    )
    registry.routes["/elsewhere"] = lambda h: reply(h, 200, blob)
    assert client_for(registry).get_blob(ref_on(registry), dg(blob), 1024) == blob


def test_endless_redirects_are_cut_off(registry: Registry) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(
        h, 302, headers={"Location": "/v2/library/app/manifests/1.0"}
    )
    with pytest.raises(RegistryUnavailable, match="too many redirects"):
        client_for(registry).get_manifest(ref_on(registry))
    assert len(registry.requests("/v2/library/app/manifests/1.0")) == MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("location", "message"),
    [(None, "without Location"), ("ftp://example.invalid/x", "unsupported URL")],
)
def test_unusable_redirects_are_refused(
    registry: Registry, location: str | None, message: str
) -> None:
    headers = {"Location": location} if location else {}
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(h, 302, headers=headers)
    with pytest.raises(RegistryUnavailable, match=message):
        client_for(registry).get_manifest(ref_on(registry))


# ---- the 401 dance ----


def bearer_registry(registry: Registry, token_reply: Route) -> str:
    """A registry that wants a bearer token from its own /token realm; returns the path."""
    path = "/v2/library/app/manifests/1.0"
    challenge = (
        f'Bearer realm="http://{registry.host}/token",service="reg",'
        'scope="repository:library/app:pull"'
    )

    def manifest(h: Handler) -> None:
        if h.headers.get("Authorization") == "Bearer tok-1":
            reply(h, 200, MANIFEST, {"Content-Type": OCI_MANIFEST})
        else:
            reply(h, 401, headers={"WWW-Authenticate": challenge})

    registry.routes[path] = manifest
    registry.routes["/token"] = token_reply
    return path


def test_a_bearer_challenge_fetches_a_token_once_and_reuses_it(registry: Registry) -> None:
    creds = Credentials("user", "secret")
    path = bearer_registry(
        registry,
        lambda h: reply(h, 200, json.dumps({"token": "tok-1", "expires_in": 300}).encode()),
    )
    client = client_for(registry, config=RegistryConfig(credentials=creds))
    assert client.get_manifest(ref_on(registry))[0] == MANIFEST
    assert client.get_manifest(ref_on(registry))[0] == MANIFEST
    (token_request,) = registry.requests("/token")
    assert token_request.headers["authorization"] == creds.basic()
    assert "service=reg" in token_request.path
    assert "scope=repository%3Alibrary%2Fapp%3Apull" in token_request.path
    auths = [s.headers.get("authorization") for s in registry.requests(path)]
    assert auths == [None, "Bearer tok-1", "Bearer tok-1"]


def test_anonymous_tokens_are_asked_for_without_credentials(registry: Registry) -> None:
    bearer_registry(registry, lambda h: reply(h, 200, json.dumps({"token": "tok-1"}).encode()))
    assert client_for(registry).get_manifest(ref_on(registry))[0] == MANIFEST
    (token_request,) = registry.requests("/token")
    assert "authorization" not in token_request.headers


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (401, b"", AuthenticationError, "refused the credentials"),
        (500, b"", RegistryUnavailable, "answered 500"),
        (200, b"not json", AuthenticationError, "not JSON"),
    ],
)
def test_token_server_failures(
    registry: Registry, status: int, body: bytes, error: type[Exception], message: str
) -> None:
    bearer_registry(registry, lambda h: reply(h, status, body))
    with pytest.raises(error, match=message):
        client_for(registry).get_manifest(ref_on(registry))


def test_a_basic_challenge_without_credentials_is_an_authentication_error(
    registry: Registry,
) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(
        h, 401, headers={"WWW-Authenticate": 'Basic realm="r"'}
    )
    with pytest.raises(AuthenticationError, match="requires credentials"):
        client_for(registry).get_manifest(ref_on(registry))


def test_wrong_basic_credentials_are_an_authentication_error(registry: Registry) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(
        h, 401, headers={"WWW-Authenticate": 'Basic realm="r"'}
    )
    creds = Credentials("user", "wrong")
    client = client_for(registry, config=RegistryConfig(credentials=creds))
    with pytest.raises(AuthenticationError, match="refused the credentials"):
        client.get_manifest(ref_on(registry))
    sent = [
        s.headers.get("authorization") for s in registry.requests("/v2/library/app/manifests/1.0")
    ]
    assert sent == [None, "Basic " + base64.b64encode(b"user:wrong").decode()]


def test_a_challenge_ocirt_cannot_answer_is_an_authentication_error(registry: Registry) -> None:
    registry.routes["/v2/library/app/manifests/1.0"] = lambda h: reply(
        h, 401, headers={"WWW-Authenticate": 'Negotiate realm="r"'}
    )
    with pytest.raises(AuthenticationError, match="no usable auth challenge"):
        client_for(registry).get_manifest(ref_on(registry))


def test_a_tls_failure_says_what_to_change() -> None:
    import ssl

    from ocirt.image.registry.client import tls_hint

    plain = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    assert tls_hint("reg:5000", plain) == (
        "; if reg:5000 is a plain-HTTP registry, list it in containers.insecure_registries "
        "of the daemon config (or start the daemon with --ccl-insecure-registries=reg:5000)"
    )
    unknown_ca = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert tls_hint("reg:5000", unknown_ca) == (
        "; if reg:5000 uses a certificate of your own CA, set containers."
        'registry_configurations."reg:5000".transport.root_ca; to skip the check, list it in '
        "containers.insecure_registries of the daemon config (or start the daemon with "
        "--ccl-insecure-registries=reg:5000)"
    )
