"""The HTTP artifact source against a server on 127.0.0.1: bounds, resume, statuses."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocirt.swupdate.fetch import DownloadError, HttpArtifactSource

BODY = bytes(range(256)) * 8  # 2 KiB


class Server:
    def __init__(self) -> None:
        self.requests: list[str | None] = []
        self.plan: list[str] = []  # per request: "ok", "cut", "stall", "ignore-range", "big"
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                server.requests.append(wanted)
                mode = server.plan.pop(0) if server.plan else "ok"
                if self.path == "/missing":
                    self.send_error(404)
                    return
                body = BODY + (b"x" * 100 if mode == "big" else b"")
                start = 0
                if wanted and mode != "ignore-range":
                    start = int(wanted.removeprefix("bytes=").removesuffix("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                rest = body[start:]
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                if mode in ("cut", "stall"):
                    self.wfile.write(rest[:500])
                    self.wfile.flush()
                    if mode == "stall":
                        server.release.wait(10)
                    self.close_connection = True
                    return
                self.wfile.write(rest)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.close()


def test_a_whole_download(server: Server, tmp_path: Path) -> None:
    source = HttpArtifactSource()
    assert source.fetch(f"{server.url}/a", tmp_path / "a.part", len(BODY)) == BODY
    assert server.requests == [None]


def test_a_dropped_connection_resumes_with_range(server: Server, tmp_path: Path) -> None:
    server.plan = ["cut"]
    got = HttpArtifactSource().fetch(f"{server.url}/a", tmp_path / "a.part", len(BODY))
    assert got == BODY
    assert server.requests == [None, "bytes=500-"]


def test_a_stalled_connection_is_dropped_and_resumed(server: Server, tmp_path: Path) -> None:
    server.plan = ["stall"]
    source = HttpArtifactSource(stall_timeout=0.5)
    assert source.fetch(f"{server.url}/a", tmp_path / "a.part", len(BODY)) == BODY
    assert server.requests == [None, "bytes=500-"]


def test_a_partial_file_from_an_earlier_run_is_continued(server: Server, tmp_path: Path) -> None:
    partial = tmp_path / "a.part"
    partial.write_bytes(BODY[:1000])
    assert HttpArtifactSource().fetch(f"{server.url}/a", partial, len(BODY)) == BODY
    assert server.requests == ["bytes=1000-"]


def test_a_server_ignoring_range_means_starting_again(server: Server, tmp_path: Path) -> None:
    partial = tmp_path / "a.part"
    partial.write_bytes(BODY[:1000])
    server.plan = ["ignore-range"]
    assert HttpArtifactSource().fetch(f"{server.url}/a", partial, len(BODY)) == BODY
    assert server.requests == ["bytes=1000-", None]


def test_more_than_the_declared_size_is_refused(server: Server, tmp_path: Path) -> None:
    server.plan = ["big"]
    with pytest.raises(DownloadError, match="is larger than 2048 bytes"):
        HttpArtifactSource().fetch(f"{server.url}/a", tmp_path / "a.part", len(BODY))


def test_a_declared_size_beyond_the_bound_is_refused_unfetched(
    server: Server, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="larger than the 1000 bytes allowed"):
        HttpArtifactSource(max_size=1000).fetch(f"{server.url}/a", tmp_path / "a.part", 2000)
    assert server.requests == []


def test_an_http_error_is_named(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404"):
        HttpArtifactSource().fetch(f"{server.url}/missing", tmp_path / "m.part", 0)


def test_an_unreachable_host_fails_after_retries(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match="failed"):
        HttpArtifactSource().fetch(f"http://127.0.0.1:{port}/a", tmp_path / "a.part", 10)


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unsupported artifact URL"):
        HttpArtifactSource().fetch("ftp://h/a", tmp_path / "a.part", 10)
