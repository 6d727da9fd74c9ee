"""Pulls against a small hostile registry on 127.0.0.1 (in this process): one that stalls,
one that sends 1 byte a second, one that holds its answer. A pull ends with an error that
names the stall or the deadline, `cancel_all` ends a hanging pull at once, the next pull
resumes the partial blob with Range, and concurrent pulls of one image share one
download. No test waits for a duration: the limits are short, the safety joins long."""

from __future__ import annotations

import http.server
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ocirt.errors import OcirtError
from ocirt.image.reference import parse_digest
from ocirt.image.registry.auth import RegistryAccess
from ocirt.image.registry.control import PullCancelled, PullDeadlineExceeded, PullStalled
from ocirt.image.service import ImageService

from .conftest import mkimage

pytestmark = pytest.mark.integration

HEAD = 100_000  # bytes of the layer sent before the registry turns hostile
SAFETY = 60.0  # how long a test waits for something that should happen at once


@dataclass
class Request:
    path: str
    range: str | None


@dataclass
class HostileRegistry:
    """Serves one OCI layout. ``mode`` decides how the layer blob is sent:
    normal, stall (HEAD bytes, then nothing), trickle (HEAD bytes, then 1 byte a second),
    hold (nothing at all, not even the headers, until ``release``)."""

    layout: Path
    layer: str
    manifest: bytes
    host: str = ""
    mode: str = "normal"
    requests: list[Request] = field(default_factory=list)
    head_sent: threading.Event = field(default_factory=threading.Event)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    closing: threading.Event = field(default_factory=threading.Event)

    def gets(self, suffix: str) -> list[Request]:
        return [r for r in self.requests if r.path.endswith(suffix)]


def _handler(reg: HostileRegistry) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            reg.requests.append(Request(self.path, self.headers.get("Range")))
            if self.path == "/v2/":
                self._send(200, b"")
            elif "/manifests/" in self.path:
                self._send(200, reg.manifest, mkimage.OCI_MANIFEST)
            elif "/blobs/" in self.path:
                digest = self.path.rsplit("/", 1)[1]
                data = (reg.layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes()
                if digest == reg.layer:
                    self._layer(data)
                else:
                    self._send(200, data)
            else:
                self._send(404, b"")

        def _send(self, status: int, body: bytes, content_type: str = "") -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _layer(self, data: bytes) -> None:
            if reg.mode == "hold":
                reg.holding.set()
                self._wait(reg.release)
            start = 0
            rng = self.headers.get("Range")
            if rng:
                start = int(rng.removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if reg.mode in ("normal", "hold"):
                self.wfile.write(data[start:])
                return
            self.wfile.write(data[start : start + HEAD])
            self.wfile.flush()
            reg.head_sent.set()
            if reg.mode == "stall":
                self._wait(reg.closing)
                return
            for offset in range(start + HEAD, len(data)):  # trickle
                if self._wait(reg.closing, 1.0):
                    return
                try:
                    self.wfile.write(data[offset : offset + 1])
                    self.wfile.flush()
                except OSError:
                    return  # the client gave up

        def _wait(self, event: threading.Event, timeout: float | None = None) -> bool:
            if timeout is not None:
                return event.wait(timeout) or reg.closing.is_set()
            while not (event.is_set() or reg.closing.is_set()):
                event.wait(0.1)
            return True

    return Handler


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[HostileRegistry]:
    layout = tmp_path / "layout"
    payload = os.urandom(400_000)  # random: the gzip is as large, so HEAD is a part of it
    layer = mkimage.Layer(mkimage.tar_bytes(lambda t: mkimage.add_file(t, "data", payload)))
    desc = mkimage.write_image(layout, [layer])
    manifest = (layout / "blobs" / "sha256" / desc["digest"].split(":")[1]).read_bytes()
    reg = HostileRegistry(layout, mkimage.sha256(layer.blob()), manifest)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(reg))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    reg.host = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield reg
    finally:
        reg.closing.set()
        reg.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


def service_for(reg: HostileRegistry, home: Path, **limits: float | None) -> ImageService:
    return ImageService(home, RegistryAccess(insecure=frozenset({reg.host})), **limits)  # type: ignore[arg-type]


def partial_size(service: ImageService, reg: HostileRegistry) -> int:
    digest = parse_digest(reg.layer)
    partial = service.store.root / "ingest" / f"{digest.algorithm}-{digest.hex}"
    try:
        return partial.stat().st_size
    except FileNotFoundError:
        return -1


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll for a state another thread reaches soon; fail only after SAFETY seconds."""
    deadline = time.monotonic() + SAFETY
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def assert_resumes(service: ImageService, reg: HostileRegistry, ref: str) -> None:
    """The next pull asks only for the rest of the partial and completes the image."""
    offset = partial_size(service, reg)
    assert offset > 0
    reg.mode = "normal"
    before = len(reg.gets(reg.layer))
    image = service.pull(ref)
    (resumed,) = reg.gets(reg.layer)[before:]
    assert resumed.range == f"bytes={offset}-"
    assert service.store.has_blob(parse_digest(reg.layer))
    assert service.store.has_snapshot(image.chain_ids[-1])


def test_a_stalled_registry_ends_the_pull_naming_the_stall(
    hostile: HostileRegistry, home: Path
) -> None:
    hostile.mode = "stall"
    service = service_for(hostile, home, stall_timeout=1.0, pull_deadline=3600.0)
    ref = f"{hostile.host}/test/stall:v1"
    with pytest.raises(PullStalled) as caught:
        service.pull(ref)
    assert "registry stalled: no data for 1 s while downloading" in caught.value.message
    assert service.store.records() == []
    assert_resumes(service, hostile, ref)


def test_a_trickling_registry_ends_the_pull_at_its_deadline(
    hostile: HostileRegistry, home: Path
) -> None:
    hostile.mode = "trickle"  # 1 byte a second: never a stall
    service = service_for(hostile, home, stall_timeout=3600.0)
    ref = f"{hostile.host}/test/trickle:v1"
    with pytest.raises(PullDeadlineExceeded) as caught:
        service.ensure(ref, deadline=3.0)  # as the manager pulls: only what is absent
    assert caught.value.message == f"{ref}: pull did not finish within its deadline of 3 s"
    assert_resumes(service, hostile, ref)


@pytest.mark.parametrize("mode", ["stall", "hold"])
def test_cancel_all_ends_a_hanging_pull_at_once(
    hostile: HostileRegistry, home: Path, mode: str
) -> None:
    """Blocked in the body (stall) or before the answer's headers (hold), with limits
    that would keep it waiting for an hour: only the cancel can end it."""
    hostile.mode = mode
    service = service_for(hostile, home, stall_timeout=3600.0, pull_deadline=3600.0)
    ref = f"{hostile.host}/test/cancel:v1"
    outcome: list[BaseException] = []

    def pull() -> None:
        try:
            service.pull(ref)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=pull)
    thread.start()
    reached = hostile.head_sent if mode == "stall" else hostile.holding
    assert reached.wait(SAFETY)
    if mode == "stall":  # what was sent is in the partial blob before the cancel
        wait_until(lambda: partial_size(service, hostile) == HEAD)
    assert service.pulls_in_flight() == {ref: 1}
    assert service.cancel_all("cancelled: the daemon is stopping") == 1
    thread.join(SAFETY)
    assert not thread.is_alive()
    (error,) = outcome
    assert isinstance(error, PullCancelled)
    assert error.message == f"{ref}: pull cancelled: the daemon is stopping"
    assert service.pulls_in_flight() == {}
    if mode == "stall":
        assert_resumes(service, hostile, ref)
    else:
        hostile.release.set()
        hostile.mode = "normal"
        service.pull(ref)  # nothing was received: a whole new download


def test_concurrent_pulls_of_one_image_share_one_download(
    hostile: HostileRegistry, home: Path
) -> None:
    hostile.mode = "hold"
    service = service_for(hostile, home)
    name = f"{hostile.host}/test/shared{secrets.token_hex(3)}"
    refs = [f"{name}:v1"] * 4 + [f"{name}:v2"] * 2  # two tags of one image
    results: list[object] = []
    errors: list[BaseException] = []

    def pull(ref: str) -> None:
        try:
            results.append(service.pull(ref).digest)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pull, args=(ref,)) for ref in refs]
    for thread in threads:
        thread.start()
    assert hostile.holding.wait(SAFETY)
    # Every caller has joined a pull in flight before the registry answers.
    wait_until(lambda: service.pulls_in_flight() == {f"{name}:v1": 4, f"{name}:v2": 2})
    hostile.release.set()
    for thread in threads:
        thread.join(SAFETY)
    assert errors == []
    assert len(results) == len(refs) and len(set(results)) == 1
    assert len(hostile.gets("/manifests/v1")) == 1
    assert len(hostile.gets("/manifests/v2")) == 1
    assert len(hostile.gets(hostile.layer)) == 1
    assert {r.reference for r in service.store.records()} == {f"{name}:v1", f"{name}:v2"}


def test_a_waiter_gets_the_leader_s_error_as_its_own(hostile: HostileRegistry, home: Path) -> None:
    hostile.mode = "hold"
    service = service_for(hostile, home)
    ref = f"{hostile.host}/test/fail:v1"
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            service.pull(ref)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert hostile.holding.wait(SAFETY)
    wait_until(lambda: service.pulls_in_flight() == {ref: 3})
    service.cancel_all()
    for thread in threads:
        thread.join(SAFETY)
    assert len(errors) == 3
    assert all(isinstance(e, PullCancelled) for e in errors)
    assert len({id(e) for e in errors}) == 3  # no exception object raised in two threads
    assert {e.message for e in errors if isinstance(e, OcirtError)} == {f"{ref}: pull cancelled"}
