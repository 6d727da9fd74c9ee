"""MQTT over TLS end to end: mosquitto with TLS listeners on 127.0.0.1, the real daemon
configured as Kanto's `connection` section says (ssl:// URL, transport.root_ca,
client_cert, client_key), and a cloud client on a plain listener of the same broker.

Certificates are made here: a test CA, a server certificate for 127.0.0.1 and localhost
and a client certificate signed by it, and a second, unrelated CA.
(tests/integration/image/keyfiles.py makes only self-signed certificates.)
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from service_harness import IMAGE, WAIT, Broker, Cloud, Service, state_updates

from tests.support.waiting import free_port

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


# ---- certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    # Signed by `ca`, but for another host than 127.0.0.1.
    elsewhere_cert: Path
    elsewhere_key: Path


def _write_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return key


def _issue(
    path: Path,
    key: Any,
    name: str,
    issuer: tuple[Any, str] | None,
    *,
    ca: bool = False,
    server: bool = False,
    hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
) -> None:
    """Write a certificate for `key`, signed by issuer (key, name) or self-signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    signer_key, signer_name = issuer if issuer is not None else (key, name)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, signer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_alt_name(host) for host in hosts]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(signer_key, hashes.SHA256())
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _alt_name(host: str) -> Any:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key = _write_key(d / "ca.key")
    _issue(d / "ca.pem", ca_key, "ocirt test CA", None, ca=True)
    server_key = _write_key(d / "server.key")
    _issue(d / "server.pem", server_key, "127.0.0.1", (ca_key, "ocirt test CA"), server=True)
    client_key = _write_key(d / "client.key")
    _issue(d / "client.pem", client_key, "ocirt-device", (ca_key, "ocirt test CA"))
    other_key = _write_key(d / "other-ca.key")
    _issue(d / "other-ca.pem", other_key, "someone else's CA", None, ca=True)
    elsewhere_key = _write_key(d / "elsewhere.key")
    _issue(
        d / "elsewhere.pem", elsewhere_key, "broker.invalid", (ca_key, "ocirt test CA"),
        server=True, hosts=("broker.invalid", "127.0.0.2"),
    )  # fmt: skip
    return Pki(
        d / "ca.pem", d / "server.pem", d / "server.key",
        d / "client.pem", d / "client.key", d / "other-ca.pem",
        d / "elsewhere.pem", d / "elsewhere.key",
    )  # fmt: skip


# ---- the broker and the daemon -------------------------------------------------------------


class TlsBroker(Broker):
    """The harness broker (plain listener `port`, for the cloud) plus a TLS listener."""

    def __init__(
        self, directory: Path, pki: Pki, *, require_certificate: bool, elsewhere: bool = False
    ) -> None:
        super().__init__(directory)
        cert, key = (
            (pki.elsewhere_cert, pki.elsewhere_key)
            if elsewhere
            else (pki.server_cert, pki.server_key)
        )
        self.tls_port = free_port()
        with self.conf.open("a") as conf:
            # Stay root (mosquitto drops to its own user by default): pytest's tmp is 0700.
            conf.write(
                "user root\n"
                f"listener {self.tls_port} 127.0.0.1\n"
                f"cafile {pki.ca}\ncertfile {cert}\nkeyfile {key}\n"
                f"require_certificate {'true' if require_certificate else 'false'}\n"
            )

    @property
    def url(self) -> str:
        return f"ssl://127.0.0.1:{self.tls_port}"


@dataclass
class World:
    broker: TlsBroker
    cloud: Cloud
    service: Service


@pytest.fixture
def world_factory(
    tmp_path: Path, pki: Pki, busybox_layout: Path, cgroup_parent: str
) -> Iterator[Any]:
    made: list[World] = []

    def make(
        *, require_certificate: bool, transport: dict[str, str], elsewhere: bool = False
    ) -> World:
        broker = TlsBroker(
            tmp_path, pki, require_certificate=require_certificate, elsewhere=elsewhere
        )
        broker.start()
        cloud: Cloud | None = None
        try:
            cloud = Cloud(broker.port, f"itest:tls{uuid.uuid4().hex[:6]}")
            service = Service(tmp_path, broker.port, busybox_layout, cgroup_parent=cgroup_parent)
        except BaseException:
            if cloud is not None:
                cloud.close()
            broker.stop()
            raise
        service.extra_config = {"connection": {"broker_url": broker.url, "transport": transport}}
        made.append(World(broker, cloud, service))
        return made[-1]

    try:
        yield make
    finally:
        for world in made:
            world.service.cleanup()
            world.cloud.close()
            world.broker.stop()


def wait_log(service: Service, needle: str) -> str:
    """The daemon's log once it contains `needle` (the daemon must stay up meanwhile)."""
    deadline = time.monotonic() + WAIT
    while True:
        text = service.log_path.read_text(errors="replace")
        if needle in text:
            return text
        assert service.proc is not None and service.proc.poll() is None, text[-3000:]
        assert time.monotonic() < deadline, f"no {needle!r} in the daemon log:\n{text[-3000:]}"
        time.sleep(0.05)


def create_and_remove(cloud: Cloud) -> None:
    """A command round trip over the TLS connection: create and start, then remove."""
    # Commands are subscribed to after the bootstrap, before the features are published.
    cloud.wait_for(lambda: cloud.bootstraps >= 1, "bootstrap over TLS")
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    got = cloud.call(
        "createWithConfig", "ContainerFactory",
        {"imageRef": IMAGE, "start": True, "config": {"cmd": SERVE}},
    )  # fmt: skip
    assert got.topic.endswith("/200"), got
    cid = got.body["value"]
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: "RUNNING" in state_updates(t, cid))
    removed = cloud.call("remove", f"Container:{cid}", True)
    assert removed.topic.endswith("/204"), removed
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: any(a == "delete" for a, _, _ in t))


def assert_not_connected(world: World, needle: str) -> str:
    """The daemon logs `needle` (why it cannot connect), stays up, never bootstraps."""
    text = wait_log(world.service, needle)
    # paho's retry loop has nothing to add: the cause is logged once, by ocirt.
    assert "Client is not connected" not in text
    # The failure is at the TLS layer, before any MQTT packet: no bootstrap can arrive.
    assert world.cloud.bootstraps == 0
    assert "thing id" not in text
    info = world.service.cli("sysinfo", "--json")
    assert info.returncode == 0, info.stderr
    assert world.service.proc is not None and world.service.proc.poll() is None
    return text


# ---- tests ------------------------------------------------------------------------------------


def test_daemon_talks_ditto_over_tls(world_factory: Any, pki: Pki) -> None:
    world = world_factory(require_certificate=False, transport={"root_ca": str(pki.ca)})
    world.service.start()
    create_and_remove(world.cloud)
    wait_log(world.service, f"connected to {world.broker.url}")


def test_an_untrusted_broker_is_refused(world_factory: Any, pki: Pki) -> None:
    world = world_factory(require_certificate=False, transport={"root_ca": str(pki.other_ca)})
    world.service.start()
    text = assert_not_connected(world, "TLS: the broker's certificate is not trusted")
    assert "check connection.transport.root_ca" in text
    assert f"cannot connect to the MQTT broker {world.broker.url}" in text


def test_a_broker_certificate_for_another_host_is_refused(world_factory: Any, pki: Pki) -> None:
    world = world_factory(
        require_certificate=False, transport={"root_ca": str(pki.ca)}, elsewhere=True
    )
    world.service.start()
    text = assert_not_connected(world, "TLS: the broker's certificate is not trusted")
    assert "certificate is not valid for '127.0.0.1'" in text


def test_mutual_tls_with_a_client_certificate(world_factory: Any, pki: Pki) -> None:
    world = world_factory(
        require_certificate=True,
        transport={
            "root_ca": str(pki.ca),
            "client_cert": str(pki.client_cert),
            "client_key": str(pki.client_key),
        },
    )
    world.service.start()
    create_and_remove(world.cloud)


def test_mutual_tls_without_a_client_certificate_is_refused(world_factory: Any, pki: Pki) -> None:
    world = world_factory(require_certificate=True, transport={"root_ca": str(pki.ca)})
    world.service.start()
    assert_not_connected(world, "certificate required")


def test_an_unreadable_root_ca_stops_the_daemon_with_a_clear_error(
    world_factory: Any, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    world = world_factory(require_certificate=False, transport={"root_ca": str(missing)})
    # The local API may be up before the things client is built: start() may return.
    with contextlib.suppress(AssertionError):
        world.service.start()
    assert world.service.proc is not None
    assert world.service.proc.wait(WAIT) == 1
    assert world.cloud.bootstraps == 0
    assert (
        f"Error: cannot load the CA certificates of connection.transport.root_ca "
        f"'{missing}': No such file or directory"
    ) in world.service.log_path.read_text()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"root_ca": "garbage"}, "cannot load the CA certificates of connection.transport."
         "root_ca '{garbage}': [X509: NO_CERTIFICATE_OR_CRL_FOUND]"),
        ({"root_ca": "ca", "client_cert": "client_cert", "client_key": "elsewhere_key"},
         "cannot load the client certificate '{client_cert}' and key '{elsewhere_key}': "
         "[X509: KEY_VALUES_MISMATCH]"),
        ({"root_ca": "ca", "client_cert": "client_cert"},
         "cannot load the client certificate '{client_cert}' and key '{client_cert}': "
         "[SSL] PEM lib"),
        ({"root_ca": "ca", "client_key": "client_key"},
         "connection.transport.client_key needs client_cert too"),
    ],
)  # fmt: skip
def test_bad_tls_files_are_clear_errors(
    pki: Pki, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    from ocirt.errors import InvalidArgument
    from ocirt.things.mqtt import MqttSettings, tls_context

    paths = {"garbage": str(tmp_path / "garbage.pem")}
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    paths.update({name: str(getattr(pki, name)) for name in Pki.__dataclass_fields__})
    settings = MqttSettings(
        broker_url="ssl://127.0.0.1:1", **{k: paths[v] for k, v in files.items()}
    )
    with pytest.raises(InvalidArgument) as caught:
        tls_context(settings)
    assert caught.value.message.startswith(message.format(**paths)), caught.value.message


def test_connect_failures_in_words() -> None:
    import ssl

    from ocirt.things.mqtt import describe_connect_error

    assert describe_connect_error(ConnectionRefusedError(111, "Connection refused")) == (
        "Connection refused"
    )
    assert describe_connect_error(TimeoutError()) == "timed out"
    assert describe_connect_error(None) == "no reason given"
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    assert describe_connect_error(alert) == (
        "TLS handshake failed: [SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"
    )
