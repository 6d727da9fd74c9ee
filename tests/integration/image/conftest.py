"""Fixtures for image integration tests: Debian's docker-registry on 127.0.0.1 (plain,
htpasswd, TLS with client certs, token auth with our own token server), test images
built by hack/mkimage.py and pushed with skopeo. Everything is killed by PID and
removed at teardown."""

from __future__ import annotations

import base64
import datetime
import http.server
import importlib.util
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.waiting import free_port

with warnings.catch_warnings():
    # bcrypt hashes for htpasswd without a new dependency; crypt is gone in 3.13.
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

REPO = Path(__file__).resolve().parents[3]


def load_mkimage() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mkimage", REPO / "hack" / "mkimage.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mkimage"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


mkimage = load_mkimage()


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("registry did not start listening")


# ---- certificates ----


@dataclass
class Pki:
    dir: Path
    ca_cert: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate

    def issue(self, name: str, *, server: bool) -> tuple[Path, Path, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_path = self.dir / f"{name}.crt"
        key_path = self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path, cert


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocirt test CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    ca_path = d / "ca.crt"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return Pki(d, ca_path, key, ca)


# ---- token server (distribution token auth, ES256 + x5c) ----


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    port: int
    users: dict[str, str]
    issued: list[str] = field(default_factory=list)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"


def _make_jwt(
    key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, claims: dict[str, Any]
) -> str:
    header = {
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture(scope="session")
def token_server(pki: Pki) -> Iterator[TokenServer]:
    _, key_path, cert = pki.issue("token-signer", server=False)
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    server_info = TokenServer(free_port(), {"tokenuser": "tokenpass"})

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            from urllib.parse import parse_qs, urlsplit

            query = parse_qs(urlsplit(self.path).query)
            auth = self.headers.get("Authorization", "")
            user = ""
            if auth.startswith("Basic "):
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                if server_info.users.get(u) != p:
                    self.send_response(401)
                    self.end_headers()
                    return
                user = u
            access = []
            for scope in query.get("scope", []):
                kind, name, actions = scope.split(":")
                # Users get what they ask for; anonymous users may pull public/* only.
                if user:
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                elif name.startswith("public/"):
                    access.append({"type": kind, "name": name, "actions": ["pull"]})
            now = int(time.time())
            claims = {
                "iss": "ocirt-test-issuer",
                "sub": user,
                "aud": "ocirt-test-registry",
                "exp": now + 300,
                "nbf": now - 30,
                "iat": now - 30,
                "jti": secrets.token_hex(8),
                "access": access,
            }
            token = _make_jwt(key, cert, claims)
            server_info.issued.append(user or "<anonymous>")
            body = json.dumps({"token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", server_info.port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_info
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# ---- registries ----


@dataclass
class Registry:
    host: str
    storage: Path  # the registry's v2 storage root
    tls: bool = False
    creds: tuple[str, str] | None = None
    client_cert: tuple[Path, Path] | None = None

    def push(self, layout: Path, tag: str, name: str, *, all_platforms: bool = False) -> None:
        cmd = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
        if all_platforms:
            cmd.append("--all")
        if self.creds:
            cmd += ["--dest-creds", f"{self.creds[0]}:{self.creds[1]}"]
        if self.client_cert:
            # skopeo wants a dir with *.cert/*.key for client certificates.
            d = self.client_cert[0].parent / "skopeo-certs"
            d.mkdir(exist_ok=True)
            (d / "client.cert").write_bytes(self.client_cert[0].read_bytes())
            (d / "client.key").write_bytes(self.client_cert[1].read_bytes())
            cmd += ["--dest-cert-dir", str(d)]
        cmd += [f"oci:{layout}:{tag}", f"docker://{self.host}/{name}"]
        subprocess.run(cmd, check=True, capture_output=True)


def _start_registry(tmp: Path, extra: str) -> Iterator[tuple[str, Path]]:
    port = free_port()
    cfg = tmp / "registry.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + extra
    )
    log = tmp / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(cfg)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_listening(port, proc, log)
        yield f"127.0.0.1:{port}", tmp / "data" / "docker" / "registry" / "v2"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous plain-HTTP registry."""
    for host, storage in _start_registry(tmp_path_factory.mktemp("reg"), ""):
        yield Registry(host, storage)


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp("regbasic")
    htpasswd = tmp / "htpasswd"
    htpasswd.write_text(f"alice:{crypt.crypt('s3cret', crypt.METHOD_BLOWFISH)}\n")
    extra = f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    for host, storage in _start_registry(tmp, extra):
        yield Registry(host, storage, creds=("alice", "s3cret"))


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Registry]:
    """HTTPS with a test CA; clients must present a certificate of the same CA."""
    tmp = tmp_path_factory.mktemp("regtls")
    cert, key, _ = pki.issue("registry", server=True)
    client = pki.issue("client", server=False)
    extra = (
        f"  tls:\n    certificate: {cert}\n    key: {key}\n    clientcas:\n      - {pki.ca_cert}\n"
    )
    for host, storage in _start_registry(tmp, extra):
        yield Registry(host, storage, tls=True, client_cert=(client[0], client[1]))


@pytest.fixture(scope="session")
def token_registry(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, token_server: TokenServer
) -> Iterator[Registry]:
    tmp = tmp_path_factory.mktemp("regtoken")
    extra = (
        "auth:\n  token:\n"
        f"    realm: {token_server.realm}\n"
        "    service: ocirt-test-registry\n"
        "    issuer: ocirt-test-issuer\n"
        f"    rootcertbundle: {pki.ca_cert}\n"
    )
    for host, storage in _start_registry(tmp, extra):
        yield Registry(host, storage, creds=("tokenuser", "tokenpass"))


# ---- images ----


@dataclass
class BuiltImage:
    layout: Path
    tag: str
    digest: str
    marker: str  # content of /marker in the image


@pytest.fixture(scope="session")
def busybox_image(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    """busybox split into 3 layers plus a layer with /marker."""
    layout = tmp_path_factory.mktemp("img") / "layout"
    layers = mkimage.split_rootfs(busybox_rootfs, 3)
    marker = secrets.token_hex(8)
    layers.append(
        mkimage.Layer(mkimage.tar_bytes(lambda t: mkimage.add_file(t, "marker", marker.encode())))
    )
    desc = mkimage.write_image(layout, layers, config={"Cmd": ["/bin/sh"], "User": "user"})
    mkimage.write_index(layout, "v1", [desc], nested=False)
    return BuiltImage(layout, "v1", desc["digest"], marker)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """An ocirt home; any rootfs mount left under it is unmounted at teardown."""
    h = tmp_path / "home"
    h.mkdir()
    try:
        yield h
    finally:
        mounts = h / "images" / "mounts"
        if mounts.is_dir():
            for rootfs in mounts.glob("*/rootfs"):
                if os.path.ismount(rootfs):
                    subprocess.run(["umount", "-l", str(rootfs)], check=False)
