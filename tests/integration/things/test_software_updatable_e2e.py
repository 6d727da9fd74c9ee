"""SoftwareUpdatable end to end: real mosquitto, the real daemon, real runc containers, and
an artifact server on 127.0.0.1 (HTTP and HTTPS) serving Kanto container descriptors.

Follows Kanto's conformance suite (integration/ctr_software_updatable_test.go): install
to FINISHED_SUCCESS with the installedDependencies naming the container, remove with
REMOVING, installedDependencies, REMOVED, FINISHED_SUCCESS, the wrong-checksum case and
the remove of a container that does not exist; then ocirt's own promises (rollback, a
replaced container restored, a download resumed and an install finished after kill -9).
"""

from __future__ import annotations

import datetime
import hashlib
import http.server
import json
import signal
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_harness import IMAGE, Cloud, Service, in_container

pytestmark = pytest.mark.integration

SU = "/features/SoftwareUpdatable"
LAST = f"{SU}/properties/status/lastOperation"
FAILED = f"{SU}/properties/status/lastFailedOperation"
DEPS = f"{SU}/properties/status/installedDependencies"
SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]
CHAIN = ["STARTED", "DOWNLOADING", "DOWNLOADED", "INSTALLING", "INSTALLED", "FINISHED_SUCCESS"]
FINISHED = ("FINISHED_SUCCESS", "FINISHED_ERROR", "FINISHED_REJECTED")


# ---- the artifact server ----------------------------------------------------------------------


class ArtifactServer:
    """Serves `files` by path, honours `Range: bytes=N-`, and can stall a path: send its
    first `stall_after` bytes, then hold the connection until `release` is set."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.stall: dict[str, int] = {}
        self.stalled = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                server.requests.append((self.path, wanted))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
                    start = int(wanted[6:-1])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                    body = body[start:]
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.stall.get(self.path)
                if cut is not None and not wanted:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    server.stalled.set()
                    server.release.wait(120)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if context is not None else "http"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def artifacts() -> Iterator[ArtifactServer]:
    server = ArtifactServer()
    try:
        yield server
    finally:
        server.close()


def descriptor(name: str, **config: Any) -> bytes:
    body: dict[str, Any] = {"container_name": name, "image": {"name": IMAGE}}
    body["config"] = {"cmd": SERVE, **config}
    return json.dumps(body, indent=2).encode()


def artifact(server: ArtifactServer, path: str, body: bytes, hash_name: str = "MD5") -> Any:
    server.files[path] = body
    digest = hashlib.new(hash_name.lower(), body).hexdigest()
    protocol = "HTTPS" if server.scheme == "https" else "HTTP"
    return {
        "filename": path.rsplit("/", 1)[1],
        "download": {protocol: {"url": server.url(path), "md5url": server.url(path)}},
        "checksums": {hash_name: digest},
        "size": len(body),
    }


def module(name: str, *arts: Any) -> dict[str, Any]:
    return {"softwareModule": {"name": name, "version": "1.0"}, "artifacts": list(arts)}


def install(cloud: Cloud, *modules: dict[str, Any], forced: bool = True) -> str:
    correlation = str(uuid.uuid4())
    value = {"correlationId": correlation, "softwareModules": list(modules), "forced": forced}
    got = cloud.call("install", "SoftwareUpdatable", value)
    assert got.body["status"] == 204, got.body
    return correlation


# ---- reading the twin ----------------------------------------------------------------------


def su_events(cloud: Cloud) -> list[tuple[str, Any]]:
    return [(path, value) for action, path, value in cloud.twin(SU) if action == "modify"]


def chain(cloud: Cloud, correlation: str, name: str | None = None) -> list[str]:
    """The lastOperation statuses of one operation (and module), in arrival order."""
    return [
        v["status"]
        for p, v in su_events(cloud)
        if p == LAST
        and v["correlationId"] == correlation
        and (name is None or v.get("softwareModule", {}).get("name") == name)
    ]


def finished(cloud: Cloud, correlation: str, count: int = 1) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        ends = [
            v
            for p, v in su_events(cloud)
            if p == LAST and v["correlationId"] == correlation and v["status"] in FINISHED
        ]
        return ends if len(ends) >= count else None

    return cloud.wait_for(done, f"{count} end(s) of {correlation}")  # type: ignore[no-any-return]


def assert_failed_first(cloud: Cloud, value: dict[str, Any]) -> None:
    """Kanto sends a failure as lastFailedOperation, then the same as lastOperation."""
    events = su_events(cloud)
    at = events.index((LAST, value))
    assert events[at - 1] == (FAILED, value)


def dependencies(cloud: Cloud) -> dict[str, Any] | None:
    """The installedDependencies as the twin has them now (None: sent without a value)."""
    current: dict[str, Any] | None = None
    for path, value in su_events(cloud):
        if path == SU:
            current = value["properties"]["status"].get("installedDependencies")
        elif path == DEPS:
            current = value
    return current


def names_in(deps: dict[str, Any] | None) -> set[str]:
    return {entry["name"] for entry in (deps or {}).values()}


def ready(service: Service, cloud: Cloud) -> None:
    service.extra_config.setdefault("things", {})["features"] = [
        "ContainerFactory",
        "SoftwareUpdatable",
    ]
    service.start()
    cloud.wait_twin(SU, lambda t: any(p == SU for _, p, _ in t))


# ---- the feature and its dependencies ---------------------------------------------------------


def test_feature_and_dependencies_follow_ditto_and_cli(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    # The feature costs an idle daemon no OpenSSL (test_footprint_e2e.py).
    assert service.proc is not None
    maps = Path(f"/proc/{service.proc.pid}/maps").read_text()
    assert "libcrypto" not in maps and "libssl" not in maps
    assert su_events(cloud)[0] == (
        SU,
        {
            "definition": ["org.eclipse.hawkbit.swupdatable:SoftwareUpdatable:2.0.0"],
            "properties": {"status": {"softwareModuleType": "oci:container"}},
        },
    )
    ditto = cloud.call("create", "ContainerFactory", {"imageRef": IMAGE}).body["value"]
    group, version = IMAGE.split(":")
    key = f"{group}.{ditto}:{version}".replace("/", "%2F")
    cloud.wait_for(lambda: names_in(dependencies(cloud)) == {ditto}, "Ditto create")
    assert dependencies(cloud) == {key: {"group": group, "name": ditto, "version": version}}

    made = service.cli("create", "--name", "from-cli", IMAGE)
    assert made.returncode == 0, made.stderr
    cloud.wait_for(lambda: len(names_in(dependencies(cloud))) == 2, "CLI create")
    cli = next(n for n in names_in(dependencies(cloud)) if n != ditto)

    gone = service.cli("remove", "--force", cli)
    assert gone.returncode == 0, gone.stderr
    cloud.wait_for(lambda: names_in(dependencies(cloud)) == {ditto}, "CLI remove")
    cloud.call("remove", f"Container:{ditto}", True)
    # The empty map is a modify with no value at all.
    cloud.wait_for(
        lambda: any(
            a == "modify" and p == DEPS and v is None
            for a, p, v in cloud.twin(SU)
        ),
        "the empty installedDependencies",
    )  # fmt: skip
    raw = [
        m.body for m in cloud.messages if isinstance(m.body, dict) and m.body.get("path") == DEPS
    ]
    assert "value" not in raw[-1]

    # A restart republishes the whole feature with what exists then.
    kept = cloud.call("create", "ContainerFactory", {"imageRef": IMAGE}).body["value"]
    service.stop()
    cloud.messages.clear()
    service.start()
    cloud.wait_twin(SU, lambda t: any(p == SU for _, p, _ in t))
    assert names_in(dependencies(cloud)) == {kept}


def test_synchronous_answers(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)

    def answer(op: str, value: Any) -> tuple[int, Any]:
        got = cloud.call(op, "SoftwareUpdatable", value)
        return got.body["status"], got.body.get("value")

    assert answer("install", {}) == (
        400,
        {
            "error": "messages:parameter.invalid",
            "status": 400,
            "message": "there are no SoftwareModules to be installed",
        },
    )
    status, value = answer("install", {"softwareModules": [module("m")]})
    assert (status, value["message"]) == (
        400,
        "there are no SoftwareArtifacts referenced for SoftwareModule [Name.version] = [m.1.0]",
    )
    status, value = answer("remove", {"correlationId": "c", "software": []})
    assert (status, value["message"]) == (400, "there are no DependencyDescriptions to be removed")
    for op in ("download", "cancel", "cancelRemove"):
        status, value = answer(op, {"correlationId": "c"})
        assert (status, value) == (
            404,
            {
                "error": "messages:subject.notfound",
                "status": 404,
                "message": f"unsupported operation called [operationId = {op}]",
            },
        )


# ---- install and remove (Kanto's conformance cases) ----------------------------------------


def test_install_with_each_checksum_then_remove(
    service: Service, cloud: Cloud, artifacts: ArtifactServer
) -> None:
    ready(service, cloud)
    modules = [
        module(f"mod-{h.lower()}", artifact(artifacts, f"/{h}.json", descriptor(
            f"swu-{h.lower()}", env=[f"SWU_HASH={h}"]), h))
        for h in ("MD5", "SHA1", "SHA256")
    ]  # fmt: skip
    correlation = install(cloud, *modules)
    ends = finished(cloud, correlation, 3)
    assert [e["status"] for e in ends] == ["FINISHED_SUCCESS"] * 3
    for h in ("MD5", "SHA1", "SHA256"):
        assert chain(cloud, correlation, f"mod-{h.lower()}") == CHAIN
    # Every module's installedDependencies update comes before its INSTALLED.
    events = su_events(cloud)
    deps = dependencies(cloud)
    assert len(names_in(deps)) == 3
    for h in ("MD5", "SHA1", "SHA256"):
        installed_at = next(
            i for i, (p, v) in enumerate(events)
            if p == LAST and v["status"] == "INSTALLED"
            and v["softwareModule"]["name"] == f"mod-{h.lower()}"
        )  # fmt: skip
        assert any(p == DEPS for p, _ in events[:installed_at])
    # The containers run what their descriptors say.
    for cid in names_in(deps):
        environ = in_container(service, cid, "cat", "/proc/1/environ")
        assert "SWU_HASH=" in environ

    removal = str(uuid.uuid4())
    items = [{"name": cid} for cid in sorted(names_in(deps))]
    got = cloud.call(
        "remove",
        "SoftwareUpdatable",
        {"correlationId": removal, "software": items, "forced": True},
    )
    assert got.body["status"] == 204
    (end,) = finished(cloud, removal)
    assert end == {
        "correlationId": removal,
        "status": "FINISHED_SUCCESS",
        "software": [{"name": i["name"], "version": ""} for i in items],
    }
    assert chain(cloud, removal) == ["REMOVING", "REMOVED"] * 3 + ["FINISHED_SUCCESS"]
    # Kanto's order: REMOVING, installedDependencies, REMOVED.
    events = su_events(cloud)
    first_removing = next(
        i for i, (p, v) in enumerate(events) if p == LAST and v["correlationId"] == removal
    )
    assert events[first_removing + 1][0] == DEPS
    assert events[first_removing + 2][1]["status"] == "REMOVED"
    assert dependencies(cloud) is None


def test_rejected_and_failed_installs(
    service: Service, cloud: Cloud, artifacts: ArtifactServer
) -> None:
    ready(service, cloud)
    body = descriptor("swu-bad")
    mismatch = artifact(artifacts, "/mismatch.json", body)
    mismatch["checksums"] = {"MD5": hashlib.md5(b"something else").hexdigest()}
    # Kanto's conformance case: the SHA1 value in the MD5 field (Kanto panics on it).
    kanto_case = artifact(artifacts, "/kanto.json", body)
    kanto_case["checksums"] = {
        "MD5": hashlib.sha1(body).hexdigest(),
        "SHA1": hashlib.sha1(body).hexdigest(),
    }
    not_hex = artifact(artifacts, "/nothex.json", body, "SHA256")
    not_hex["checksums"] = {"SHA256": "zz" * 32}
    invalid = artifact(artifacts, "/invalid.json", descriptor("in valid name"), "SHA1")
    not_json = artifact(artifacts, "/notjson.json", b"{ this is not json", "SHA256")
    missing = artifact(artifacts, "/missing.json", body)
    del artifacts.files["/missing.json"]
    cases = {
        "mismatch": (mismatch, "FINISHED_REJECTED", "md5 checksum does not match"),
        "kanto": (
            kanto_case,
            "FINISHED_REJECTED",
            "the provided input hash is either invalid, not a hex string or the length "
            "exceeds 16 bytes",
        ),
        "nothex": (
            not_hex,
            "FINISHED_REJECTED",
            "the provided input hash is either invalid, not a hex string or the length "
            "exceeds 32 bytes",
        ),
        "invalid": (invalid, "FINISHED_REJECTED", "invalid container name format : in valid name"),
        "notjson": (not_json, "FINISHED_ERROR", "invalid JSON"),
        "missing": (missing, "FINISHED_ERROR", "HTTP 404"),
    }
    correlation = install(cloud, *(module(name, art) for name, (art, _, _) in cases.items()))
    finished(cloud, correlation, len(cases))
    for name, (_, status, message) in cases.items():
        statuses = chain(cloud, correlation, name)
        assert statuses == ["STARTED", "DOWNLOADING", status], name
        end = next(
            v for p, v in su_events(cloud)
            if p == LAST and v.get("softwareModule", {}).get("name") == name
            and v["status"] == status
        )  # fmt: skip
        assert message in end["message"], (name, end)
        assert_failed_first(cloud, end)
    assert dependencies(cloud) is None


def test_remove_not_forced_and_missing_containers(service: Service, cloud: Cloud) -> None:
    ready(service, cloud)
    kept = cloud.call("create", "ContainerFactory", {"imageRef": IMAGE}).body["value"]
    cloud.wait_for(lambda: names_in(dependencies(cloud)) == {kept}, "the create")
    # Kanto's conformance case.
    lone = str(uuid.uuid4())
    cloud.call(
        "remove",
        "SoftwareUpdatable",
        {"correlationId": lone, "software": [{"name": "NonExistingContainer"}], "forced": True},
    )
    (end,) = finished(cloud, lone)
    assert end["message"] == "container with ID = NonExistingContainer does not exist"
    assert end["status"] == "FINISHED_ERROR"
    assert_failed_first(cloud, end)

    # Not forced: the first error stops the rest, which count as rejected.
    stopped = str(uuid.uuid4())
    value = {"correlationId": stopped, "software": [{"name": "gone-1"}, {"name": kept}]}
    cloud.call("remove", "SoftwareUpdatable", value)
    ends = finished(cloud, stopped, 2)
    assert ends[0] == {
        "correlationId": stopped,
        "status": "FINISHED_REJECTED",
        "software": [{"name": kept, "version": ""}],
    }
    assert ends[1]["status"] == "FINISHED_ERROR"
    assert ends[1]["message"] == "container with ID = gone-1 does not exist"
    assert chain(cloud, stopped) == ["REMOVING", "FINISHED_REJECTED", "FINISHED_ERROR"]
    assert names_in(dependencies(cloud)) == {kept}

    # Forced: every item is tried; the errors are compounded.
    forced = str(uuid.uuid4())
    value = {
        "correlationId": forced,
        "software": [{"name": "gone-1"}, {"name": "gone-2"}, {"name": kept}],
        "forced": True,
    }
    cloud.call("remove", "SoftwareUpdatable", value)
    ends = finished(cloud, forced, 2)
    assert ends[0]["message"] == (
        "2 errors:\n\n* container with ID = gone-1 does not exist\n"
        "* container with ID = gone-2 does not exist"
    )
    assert ends[1]["status"] == "FINISHED_SUCCESS"
    assert dependencies(cloud) is None


# ---- better than Kanto ----------------------------------------------------------------


def test_a_start_failure_rolls_back_and_restores_the_replaced_container(
    service: Service, cloud: Cloud, artifacts: ArtifactServer
) -> None:
    ready(service, cloud)
    old = cloud.call(
        "createWithConfig",
        "ContainerFactory",
        {"imageRef": IMAGE, "name": "swu-app", "start": True, "config": {"cmd": SERVE}},
    ).body["value"]
    cloud.wait_for(lambda: names_in(dependencies(cloud)) == {old}, "the old container")
    good = artifact(artifacts, "/app.json", descriptor("swu-app", env=["NEW=1"]))
    broken = artifact(
        artifacts, "/broken.json", descriptor("swu-broken", cmd=["/no/such/binary"]), "SHA256"
    )
    correlation = install(cloud, module("app", good, broken))
    (end,) = finished(cloud, correlation)
    assert end["status"] == "FINISHED_ERROR"
    assert chain(cloud, correlation) == [*CHAIN[:5], "FINISHED_ERROR"]
    assert "the install was rolled back: removed the new container(s) " in end["message"]
    assert f"restored swu-app ({old})" in end["message"]
    assert_failed_first(cloud, end)
    # Nothing of the module is left; the old container has its name back and runs.
    cloud.wait_for(lambda: names_in(dependencies(cloud)) == {old}, "the rollback")
    got = service.cli("get", old)
    assert got.returncode == 0, got.stderr
    assert "swu-app" in got.stdout
    assert "NEW=1" not in in_container(service, old, "cat", "/proc/1/environ")


def test_replacing_a_same_named_container(
    service: Service, cloud: Cloud, artifacts: ArtifactServer
) -> None:
    ready(service, cloud)
    old = cloud.call(
        "createWithConfig",
        "ContainerFactory",
        {"imageRef": IMAGE, "name": "swu-svc", "start": True, "config": {"cmd": SERVE}},
    ).body["value"]
    correlation = install(
        cloud, module("svc", artifact(artifacts, "/svc.json", descriptor("swu-svc", env=["V=2"])))
    )
    (end,) = finished(cloud, correlation)
    assert end["status"] == "FINISHED_SUCCESS", end
    cloud.wait_for(lambda: old not in names_in(dependencies(cloud)), "the old one removed")
    (new,) = names_in(dependencies(cloud))
    assert "V=2" in in_container(service, new, "cat", "/proc/1/environ")


def test_https_with_the_registry_trust(service: Service, cloud: Cloud, tmp_path: Path) -> None:
    ca, cert, key = make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ArtifactServer(context)
    try:
        service.extra_config["containers"] = {
            "registry_configurations": {
                f"127.0.0.1:{server.port}": {"transport": {"root_ca": str(ca)}}
            }
        }
        ready(service, cloud)
        body = descriptor("swu-tls")
        correlation = install(cloud, module("tls", artifact(server, "/tls.json", body, "SHA256")))
        (end,) = finished(cloud, correlation)
        assert end["status"] == "FINISHED_SUCCESS", end
    finally:
        server.close()


def test_kill_9_while_downloading_resumes_after_restart(
    service: Service, cloud: Cloud, artifacts: ArtifactServer
) -> None:
    ready(service, cloud)
    body = descriptor("swu-resumed", env=["RESUMED=yes"])
    art = artifact(artifacts, "/slow.json", body, "SHA1")
    artifacts.stall["/slow.json"] = 40
    correlation = install(cloud, module("slow", art))
    assert artifacts.stalled.wait(60)
    cloud.wait_for(lambda: chain(cloud, correlation) == ["STARTED", "DOWNLOADING"], "DOWNLOADING")
    service.stop(signal.SIGKILL)
    del artifacts.stall["/slow.json"]
    artifacts.release.set()
    service.start()
    (end,) = finished(cloud, correlation)
    assert end["status"] == "FINISHED_SUCCESS", end
    # The second run went on from the 40 bytes the first one kept.
    assert ("/slow.json", "bytes=40-") in artifacts.requests
    (cid,) = names_in(dependencies(cloud))
    assert "RESUMED=yes" in in_container(service, cid, "cat", "/proc/1/environ")


def test_kill_9_while_installing_is_rolled_back_after_restart(
    service: Service, cloud: Cloud, artifacts: ArtifactServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCIRT_TEST_CRASH_AT", "swupdate:installed")
    ready(service, cloud)
    correlation = install(
        cloud, module("crash", artifact(artifacts, "/crash.json", descriptor("swu-crash")))
    )
    assert service.proc is not None
    service.proc.wait(120)
    assert service.proc.returncode == -signal.SIGKILL
    # The crash comes after INSTALLED was handed to the publisher, which may not have sent it.
    # What it did send may still be on its way through the broker when the daemon is gone.
    cloud.wait_for(
        lambda: chain(cloud, correlation)[-1:] in (["INSTALLING"], ["INSTALLED"]),
        "the feedback sent before the crash",
    )
    service.proc = None
    monkeypatch.delenv("OCIRT_TEST_CRASH_AT")
    service.start()
    (end,) = finished(cloud, correlation)
    assert end["status"] == "FINISHED_ERROR"
    assert end["message"].startswith(
        "the daemon stopped while the module was being installed; the install was rolled "
        "back: removed the new container(s) "
    )
    assert_failed_first(cloud, end)
    cloud.wait_for(lambda: dependencies(cloud) is None, "the rollback")


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("swu CA")).issuer_name(name("swu CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(name("swu CA"))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
