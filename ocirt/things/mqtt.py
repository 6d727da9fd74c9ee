"""The MQTT adapter of the things front end (paho-mqtt 2.x). Does I/O: the network, and
the known-features file through `known.py`.

Threads, chosen here and nowhere else:
- paho's network thread reads messages and reconnects on its own (auto-reconnect);
- a small worker pool runs commands, so a long create (an image pull) never holds up
  a stop of another container;
- one publisher thread owns the twin: it turns manager events into twin commands,
  republishes the feature set after each bootstrap and keeps the known-features file,
  so twin updates leave in the order the manager produced them. While container
  commands are being answered it holds manager events back (at most ANSWER_FIRST s), so the
  twin's JSON and its publishing do not compete with a create+start for the CPU: the
  answer leaves first, its events right after (Kanto's events are asynchronous too).

On every (re)connect the client bootstraps as Kanto's does (docs/kanto-compatibility.md §1): it
asks `edge/thing/request` for the device identity, then subscribes to its commands and
republishes the whole feature set, deleting features of containers that are gone.

TLS (ssl://, tls://, mqtts://, mqtt+ssl://, tcps://, as Kanto): `tls_context` loads the
`connection.transport` files at start-up, so a bad file stops the daemon with a clear
error; a broker that cannot be reached or trusted is retried, and each new cause of
failure is logged once, in words that say whether TLS was the reason.

Latency: MQTT packets are small and each answers another, which is the worst case for
Nagle's algorithm meeting delayed ACKs (a packet held ~40 ms until the peer's delayed
ACK). The client's socket has TCP_NODELAY, and it ACKs the broker's PUBACKs at once
(TCP_QUICKACK): mosquitto does not set TCP_NODELAY by default, so its next packet to us,
often the next command, would otherwise wait for our delayed ACK of that PUBACK.

Memory: paho imports `ssl`, `hashlib` and `urllib.request` at once (~7 MB) and needs
them only for TLS, websockets and proxies. The daemon's composition root puts
`ocirt.deferred` stand-ins in their place before it imports this module; this module
changes no interpreter-wide state itself.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ocirt import deferred
from ocirt.errors import InvalidArgument, OcirtError, Overloaded, TooLarge, Unavailable
from ocirt.lanes import Lane, Lanes
from ocirt.manager.types import Event, EventKind
from ocirt.things import known as known_features
from ocirt.things import protocol
from ocirt.things.extension import Build, TwinFeature
from ocirt.things.features import Features
from ocirt.things.ports import ContainerManager
from ocirt.things.protocol import Identity, Outbound
from ocirt.things.twin import Twin, TwinTracker

if TYPE_CHECKING:
    import ssl

log = logging.getLogger(__name__)


def _not_retry_noise(record: logging.LogRecord) -> bool:
    # paho 2.2 logs an error each time its retry loop finds no socket after a failed
    # connect; `_on_connect_fail` has already said why the connect failed.
    return not str(record.msg).startswith("Client is not connected")


# paho reports socket errors after the connect (e.g. a TLS 1.3 broker refusing our
# certificate once the handshake is done) only through its logger; its per-packet
# debug chatter stays out.
_paho_log = logging.getLogger(f"{__name__}.paho")
_paho_log.setLevel(logging.WARNING)
_paho_log.addFilter(_not_retry_noise)

QOS = 1
# Kanto asks for the identity once per connect; asking again until someone answers lets
# a device come up before its cloud connector does.
BOOTSTRAP_RETRY = 5.0
# Commands the broker delivers (queued in our session) before the identity is known.
EARLY_COMMANDS = 256
_TLS_SCHEMES = frozenset({"ssl", "tls", "mqtts", "mqtt+ssl", "tcps"})
# How long twin events wait at most for the commands in flight to be answered; bounded,
# so a long command (a pull) or a stream of commands never holds the twin back longer.
ANSWER_FIRST = 0.5


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Kanto's `connection` section, as the adapter needs it."""

    broker_url: str = "tcp://localhost:1883"
    keep_alive: float = 20.0
    username: str = ""
    password: str = ""
    connect_timeout: float = 30.0
    root_ca: str = ""
    client_cert: str = ""
    client_key: str = ""
    # Biggest message read from the broker; a larger one is skipped unread (413).
    max_message_size: int = 1024 * 1024


class LiveFeature(Protocol):
    """A feature that reports live data on its own schedule (Metrics). At each bootstrap
    it gets the twin and a `send` that drops messages while the broker is away."""

    def on_bootstrap(self, twin: Twin, send: Callable[[Outbound], None], /) -> None: ...


@dataclass(frozen=True, slots=True)
class _Republish:
    identity: Identity


@dataclass(frozen=True, slots=True)
class _Stop:
    pass


@dataclass(frozen=True, slots=True)
class _Post:
    build: Build


@dataclass(frozen=True, slots=True)
class _Acked:
    """The broker acknowledged (PUBACK) the message with this mid."""

    mid: int


_Work = Event | _Republish | _Stop | _Post | _Acked

CLIENT_ID_FILE = "mqtt-client-id"


def persistent_client_id(home_dir: Path) -> str:
    """The client id of this device's MQTT session, made once and kept in the things home
    dir: the broker keeps the session (and queues commands) under it while we are away."""
    path = home_dir / CLIENT_ID_FILE
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read %s (%s); making a new MQTT client id", path, exc)
        text = ""
    if text and len(text) <= 64 and text.isascii() and text.isprintable():
        return text
    from ocirt.atomic import write_atomic

    made = f"ocirt-{uuid.uuid4().hex}"
    home_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(path, made.encode() + b"\n", mode=0o600)
    return made


class _BoundedClient(paho.Client):
    """paho's client, except that a PUBLISH over `max_packet` bytes is never held in
    memory: once its fixed header is read, its body is read in small chunks and dropped
    (only the topic and packet id are kept), it is acknowledged so the broker does not
    send it again, and `on_oversized(topic, size)` is called.

    paho reads a packet whole into one buffer (`_packet_read`, with a recv of the whole
    remaining length), so this hooks its socket read: the read of an oversized body
    reports "would block", and `_packet_read` takes over from there. Written against
    paho-mqtt 2.2's `_in_packet`; `tests/unit/things/test_mqtt.py` pins the behaviour."""

    CHUNK = 64 * 1024

    def __init__(self, *args: Any, max_packet: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_packet = max_packet
        self.on_oversized: Callable[[str, int], None] | None = None
        self._skip_head = bytearray()

    def _oversized(self) -> bool:
        packet = self._in_packet
        return bool(
            packet["have_remaining"]
            and packet["command"] & 0xF0 == paho.PUBLISH
            and packet["remaining_length"] > self.max_packet
        )

    def _create_socket_connection(self) -> socket.socket:
        # socket.getaddrinfo encodes a str host with the idna codec, and importing it
        # (with stringprep and unicodedata) costs the daemon about 0.3 MB for good; an
        # ASCII host given as bytes is resolved the same way without it.
        host = self._host
        if self._get_proxy() or not host.isascii():
            return super()._create_socket_connection()
        return socket.create_connection(
            (host.encode("ascii"), self._port),  # type: ignore[arg-type]  # getaddrinfo takes bytes
            timeout=self._connect_timeout,
            source_address=(self._bind_address, self._bind_port),
        )

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._oversized():
            raise BlockingIOError  # not into one buffer: `_packet_read` skips it
        return super()._sock_recv(bufsize)

    def _packet_read(self) -> MQTTErrorCode:
        if not self._oversized():
            rc = super()._packet_read()
            if rc != MQTTErrorCode.MQTT_ERR_AGAIN or not self._oversized():
                return rc
        return self._skip_packet()

    def _skip_packet(self) -> MQTTErrorCode:
        packet = self._in_packet
        for _ in range(64):  # then let paho's loop write and ping too
            if packet["to_process"] <= 0:
                return self._skipped()
            try:
                data = paho.Client._sock_recv(self, min(packet["to_process"], self.CHUNK))
            except BlockingIOError:
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            packet["to_process"] -= len(data)
            # Topic length (2), topic (<= 65535), packet id (2): all we keep.
            room = 65539 - len(self._skip_head)
            if room > 0:
                self._skip_head += data[:room]
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
        if packet["to_process"] <= 0:
            return self._skipped()
        return MQTTErrorCode.MQTT_ERR_AGAIN

    def _skipped(self) -> MQTTErrorCode:
        head = bytes(self._skip_head)
        command = self._in_packet["command"]
        size = self._in_packet["remaining_length"]
        self._skip_head = bytearray()
        self._in_packet = {
            "command": 0,
            "have_remaining": 0,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": 0,
            "packet": bytearray(b""),
            "to_process": 0,
            "pos": 0,
        }
        if len(head) < 2:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        topic_length = int.from_bytes(head[:2], "big")
        qos = (command & 0x06) >> 1
        end = 2 + topic_length
        if len(head) < end + (2 if qos else 0):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        topic = head[2:end].decode("utf-8", errors="replace")
        payload_size = size - end - (2 if qos else 0)
        if qos == 1:
            self._send_puback(int.from_bytes(head[end : end + 2], "big"))
        elif qos == 2:
            self._send_pubrec(int.from_bytes(head[end : end + 2], "big"))
        if self.on_oversized is not None:
            try:
                self.on_oversized(topic, payload_size)
            except Exception:
                log.exception("handling an oversized message on %s failed", topic)
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def _set_tcp_option(client: paho.Client, option: int) -> None:
    """Best effort: a socket that is gone or not TCP keeps its defaults."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, tls) of a broker URL such as tcp://host:1883 or ssl://host:8883."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _TLS_SCHEMES | {"tcp", "mqtt"}:
        raise InvalidArgument(f"unsupported broker URL scheme in {url!r}")
    tls = scheme in _TLS_SCHEMES
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise InvalidArgument(f"invalid port in broker URL {url!r}") from exc
    if not parts.hostname:
        raise InvalidArgument(f"no host in broker URL {url!r}")
    return parts.hostname, port, tls


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """The TLS side of a broker connection, as Kanto's local-broker TLS: the broker's
    certificate must chain to `root_ca` (the system CAs when it is empty) and name the
    broker's host, TLS 1.2 or newer, and a client certificate when one is configured.
    Reads the files now, so a bad one is a clear InvalidArgument at start-up."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if settings.root_ca:
            context.load_verify_locations(cafile=settings.root_ca)
        else:
            context.load_default_certs()
    except OSError as exc:
        raise InvalidArgument(
            f"cannot load the CA certificates of connection.transport.root_ca "
            f"{settings.root_ca!r}: {_reason(exc)}"
        ) from exc
    if settings.client_key and not settings.client_cert:
        raise InvalidArgument("connection.transport.client_key needs client_cert too")
    if settings.client_cert:
        try:
            # Without client_key the key is read from the client_cert file.
            context.load_cert_chain(settings.client_cert, settings.client_key or None)
        except OSError as exc:
            raise InvalidArgument(
                f"cannot load the client certificate {settings.client_cert!r} and key "
                f"{settings.client_key or settings.client_cert!r}: {_reason(exc)}"
            ) from exc
    return context


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc)


def describe_connect_error(exc: BaseException | None) -> str:
    """Why a connect failed, in words for the log (TLS failures named as such)."""
    if exc is None:
        return "no reason given"
    if deferred.is_loaded("ssl"):
        import ssl

        if isinstance(exc, ssl.SSLCertVerificationError):
            return (
                f"TLS: the broker's certificate is not trusted ({exc.verify_message}); "
                "check connection.transport.root_ca and the broker's host name"
            )
        if isinstance(exc, ssl.SSLError):
            return f"TLS handshake failed: {_reason(exc)}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return _reason(exc)


class ThingsClient:
    """Connects the features to a broker. `start()`, then `close()`."""

    def __init__(
        self,
        settings: MqttSettings,
        manager: ContainerManager,
        features: Features,
        home_dir: Path,
        *,
        factory_enabled: bool = True,
        extensions: tuple[TwinFeature, ...] = (),
        live: Sequence[LiveFeature] = (),
        lanes: Lanes | None = None,
    ) -> None:
        self._settings = settings
        self._extensions = extensions
        self._live = tuple(live)
        self._manager = manager
        self._features = features
        self._home_dir = Path(home_dir)
        self._factory_enabled = factory_enabled
        self._host, self._port, tls = broker_address(settings.broker_url)
        # A persistent session (Kanto's is clean): the broker keeps our subscriptions
        # and queues commands (QoS 1) while we reconnect or restart.
        self._client = _BoundedClient(
            CallbackAPIVersion.VERSION2,
            client_id=persistent_client_id(self._home_dir),
            clean_session=False,
            protocol=paho.MQTTv311,
            max_packet=settings.max_message_size,
        )
        self._client.on_oversized = self._on_oversized
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password or None)
        if tls:
            self._client.tls_set_context(tls_context(settings))
        self._client.enable_logger(_paho_log)
        self._client.connect_timeout = settings.connect_timeout
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_puback
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_message = self._on_message
        # Shared with the local API when the daemon passes them; closed by their owner.
        self._own_lanes = lanes is None
        self._lanes = lanes if lanes is not None else Lanes(2, 4, 64)
        # Commands the broker delivered before this connection's bootstrap answered.
        self._early: list[tuple[str, bytes]] = []
        self._refusals: list[paho.MQTTMessageInfo] = []
        self._queue: queue.Queue[_Work] = queue.Queue()
        self._publisher = threading.Thread(
            target=self._publish_loop, name="ocirt-twin", daemon=True
        )
        self._lock = threading.Lock()
        # Commands being handled, and until when events wait for them (`_answers_first`).
        self._answering = threading.Condition(threading.Lock())
        self._in_flight = 0
        self._hold_until: float | None = None
        self._identity: Identity | None = None
        self._connection = 0
        self._ready = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False
        self._last_failure = ""
        # Test and bench hook: called after each completed bootstrap + republish.
        self.on_ready: Callable[[Identity], None] | None = None

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        for extension in self._extensions:
            extension.bind(lambda build: self._queue.put(_Post(build)))
        self._unsubscribe = self._manager.subscribe(self._queue.put)
        self._publisher.start()
        try:
            self._client.connect_async(self._host, self._port, int(self._settings.keep_alive))
        except (OSError, ValueError) as exc:
            raise Unavailable(f"cannot reach the MQTT broker {self._settings.broker_url}") from exc
        self._client.loop_start()

    def wait_ready(self, timeout: float) -> bool:
        """True once the first bootstrap and republish are done."""
        return self._ready.wait(timeout)

    @property
    def identity(self) -> Identity | None:
        with self._lock:
            return self._identity

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._own_lanes:
            self._lanes.close(wait=30.0)
        self._flush_refusals(5.0)
        for extension in self._extensions:
            extension.close()
        self._queue.put(_Stop())
        if self._publisher.is_alive():
            self._publisher.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()

    # ---- paho callbacks (network thread: keep them short) ----------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any = None,
    ) -> None:
        if getattr(reason_code, "is_failure", False):
            log.warning("MQTT connection refused: %s", reason_code)
            return
        _set_tcp_option(client, socket.TCP_NODELAY)
        log.info("connected to %s; bootstrapping", self._settings.broker_url)
        with self._lock:
            self._last_failure = ""
            self._identity = None
            self._connection += 1
            connection = self._connection
        client.subscribe(protocol.BOOTSTRAP_RESPONSE_TOPIC, qos=QOS)
        self._ask_identity(connection)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` around the connect, so the
        # exception being handled is the cause; it retries on its own after this.
        reason = describe_connect_error(sys.exc_info()[1])
        with self._lock:
            repeated = reason == self._last_failure
            self._last_failure = reason
        # Once per distinct cause: a broker that stays away must not flood the log.
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "cannot connect to the MQTT broker %s: %s; retrying",
            self._settings.broker_url,
            reason,
        )

    def _on_puback(
        self, client: paho.Client, userdata: Any, mid: int, *args: Any, **kwargs: Any
    ) -> None:
        # Linux leaves quick-ACK mode by itself, so this is set again after each PUBACK.
        _set_tcp_option(client, socket.TCP_QUICKACK)
        # The publisher thread forgets a deleted feature only once the broker has it.
        self._queue.put(_Acked(mid))

    def _ask_identity(self, connection: int) -> None:
        with self._lock:
            if self._closed or self._identity is not None or connection != self._connection:
                return
        self._client.publish(protocol.BOOTSTRAP_REQUEST_TOPIC, protocol.BOOTSTRAP_REQUEST, qos=QOS)
        timer = threading.Timer(BOOTSTRAP_RETRY, self._ask_identity, (connection,))
        timer.daemon = True
        timer.start()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any = None,
    ) -> None:
        with self._lock:
            self._connection += 1
        if not self._closed:
            log.warning("disconnected from the MQTT broker (%s); reconnecting", reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            if message.topic == protocol.BOOTSTRAP_RESPONSE_TOPIC:
                self._on_identity(bytes(message.payload))
                return
            self._dispatch(message.topic, bytes(message.payload))
        except Exception:
            log.exception("dropped an MQTT message on %s", message.topic)

    def _on_oversized(self, topic: str, size: int) -> None:
        """A message over max_message_size (`size`: its payload's bytes), skipped unread:
        answer 413 when its topic
        names a request of ours (its payload, and so its envelope, is gone)."""
        limit = self._settings.max_message_size
        log.warning("refused a %d-byte MQTT message on %s (limit %d)", size, topic, limit)
        error = TooLarge(f"message of {size} bytes exceeds the limit of {limit} bytes")
        self._refuse_by_topic(topic, error)

    def _refuse_by_topic(self, topic: str, error: OcirtError) -> None:
        identity = self.identity
        reply = protocol.topic_reply(topic)
        if reply is None or (identity is not None and reply.thing_id != str(identity.thing)):
            return
        rejection = protocol.Rejection(protocol.DittoError.from_exception(error), reply)
        self._send(protocol.rejection_response(rejection))

    def _dispatch(self, topic: str, payload: bytes) -> None:
        """Parse one command (network thread) and queue it on its lane, or answer now."""
        identity = self.identity
        if identity is None:
            # A persistent session delivers what the broker queued right after the
            # connect, before the identity is known: kept for the bootstrap, bounded.
            with self._lock:
                if len(self._early) < EARLY_COMMANDS and not self._closed:
                    self._early.append((topic, payload))
                    return
            self._refuse_by_topic(topic, Overloaded("not ready yet: the bootstrap is not done"))
            return
        parsed = protocol.parse_command(topic, payload, identity.thing)
        if isinstance(parsed, protocol.Ignored):
            log.debug("ignored %s: %s", topic, parsed.reason)
            return
        if isinstance(parsed, protocol.Rejection):
            log.info("refused a request on %s: %s", topic, parsed.error.message)
            self._send(protocol.rejection_response(parsed))
            return
        command = parsed
        lane, key = self._lane_of(command)
        try:
            task = self._lanes.submit(lane, key, lambda: self._run_command(command))
        except Overloaded as exc:
            log.warning("refused %s %s: %s", command.feature, command.operation, exc.message)
            self._answer_refused(command, exc)
            return
        task.future.add_done_callback(lambda done: self._on_task_done(command, done))

    def _lane_of(self, command: protocol.Command) -> tuple[Lane, str | None]:
        """Creates and extension features (downloads) may take minutes: the slow lane.
        Each container keeps its commands in order; creates have no order among them."""
        if command.feature == protocol.CONTAINER_FACTORY:
            return Lane.SLOW, None
        if not command.feature.startswith(protocol.CONTAINER_PREFIX):
            return Lane.SLOW, command.feature
        return Lane.CONTROL, command.feature

    def _on_task_done(self, command: protocol.Command, done: Future[Any]) -> None:
        if done.cancelled():  # queued when the daemon began to stop
            self._answer_refused(command, Overloaded("the daemon is stopping; try again"))
        elif done.exception() is not None:
            log.error("%s %s failed: %r", command.feature, command.operation, done.exception())

    def _answer_refused(self, command: protocol.Command, exc: OcirtError) -> None:
        outcome = protocol.Outcome.failed(protocol.DittoError.from_exception(exc))
        info = self._send(protocol.command_response(command, outcome))
        if info is not None:
            with self._lock:
                self._refusals = [i for i in self._refusals if not i.is_published()]
                self._refusals.append(info)

    def _flush_refusals(self, timeout: float) -> None:
        """Let the 503 answers of a stop reach the broker before we disconnect."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._refusals)
        for info in pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(remaining)

    def _on_identity(self, payload: bytes) -> None:
        try:
            identity = protocol.parse_identity(payload)
        except ValueError as exc:
            log.warning("ignored a bootstrap response: %s", exc)
            return
        with self._lock:
            previous = self._identity
            self._identity = identity
        if previous == identity:
            return
        if previous is not None:
            self._client.unsubscribe(protocol.command_subscription(previous.thing))
        log.info("thing id %s (tenant %s)", identity.thing, identity.tenant_id)
        self._client.subscribe(protocol.command_subscription(identity.thing), qos=QOS)
        self._queue.put(_Republish(identity))
        with self._lock:
            early, self._early = self._early, []
        for topic, payload in early:
            self._dispatch(topic, payload)

    # ---- commands (worker threads) ------------------------------------------------------

    def _run_command(self, command: protocol.Command) -> None:
        # Only the container operations hold the twin back: the other features' long
        # commands (a SoftwareUpdatable install) report progress through it meanwhile.
        holds = command.feature == "ContainerFactory" or command.feature.startswith("Container:")
        if holds:
            with self._answering:
                self._in_flight += 1
        try:
            result = self._features.handle(command)
            if isinstance(result, protocol.Rejection):
                self._send(protocol.rejection_response(result))
            else:
                self._send(protocol.command_response(command, result))
        finally:
            if holds:
                with self._answering:
                    self._in_flight -= 1
                    if not self._in_flight:
                        self._answering.notify_all()

    def _answers_first(self) -> None:
        """Wait (publisher thread) until no command is in flight, for at most ANSWER_FIRST
        seconds from the first event that waited; later events do not wait past that."""
        with self._answering:
            if self._in_flight and self._hold_until is None:
                self._hold_until = time.monotonic() + ANSWER_FIRST
            while self._in_flight and self._hold_until is not None:
                remaining = self._hold_until - time.monotonic()
                if remaining <= 0:
                    return
                self._answering.wait(remaining)
            self._hold_until = None

    def _send(self, message: Outbound | None) -> paho.MQTTMessageInfo | None:
        if message is None:
            return None
        info = self._client.publish(message.topic, message.payload, qos=QOS)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            log.warning("publish to %s failed: %s", message.topic, paho.error_string(info.rc))
        return info

    def _send_connected(self, message: Outbound) -> None:
        # Periodic data while the broker is away is dropped, not queued by paho unbounded.
        if self._client.is_connected():
            self._send(message)

    # ---- the twin (publisher thread) ----------------------------------------------------

    def _publish_loop(self) -> None:
        tracker: TwinTracker | None = None
        # The container features this thing has on the cloud side, as last stored: this
        # thread alone writes the file, so it is read once per bootstrap, not per event.
        known: set[str] = set()
        # Deletes sent but not yet acknowledged by the broker, by mid: a feature leaves
        # `known` only on its PUBACK, so a delete lost in an outage is sent again at the
        # next bootstrap (which compares `known` with the containers that exist).
        deleting: dict[int, str] = {}
        while True:
            work = self._queue.get()
            if isinstance(work, _Stop):
                return
            try:
                if isinstance(work, _Acked):
                    cid = deleting.pop(work.mid, None)
                    if cid is not None and tracker is not None and cid in known:
                        known.discard(cid)
                        known_features.save(self._home_dir, tracker.twin.thing, known)
                elif isinstance(work, _Republish):
                    tracker = TwinTracker(Twin(work.identity.thing, work.identity.tenant_id))
                    deleting.clear()
                    known = self._republish(tracker, deleting)
                elif tracker is None:
                    continue
                elif isinstance(work, _Post):
                    for message in work.build(tracker.twin):
                        self._send(message)
                else:
                    self._answers_first()
                    if self._factory_enabled:
                        sent = [self._send(message) for message in tracker.on_event(work)]
                        if work.kind is EventKind.REMOVED:
                            # Kept in `known` until the broker acknowledges the delete.
                            for info in sent:
                                if info is not None:
                                    deleting[info.mid] = work.container.id
                        elif known_features.track(known, work):
                            known_features.save(self._home_dir, tracker.twin.thing, known)
                    for extension in self._extensions:
                        for message in extension.on_event(tracker.twin, work):
                            self._send(message)
            except Exception:
                log.exception("twin update failed")

    def _republish(self, tracker: TwinTracker, deleting: dict[int, str]) -> set[str]:
        """Publish the whole feature set; returns the ids of the container features the
        cloud side may have (those that exist, and those whose delete is unacknowledged,
        recorded in `deleting` by mid)."""
        thing = tracker.twin.thing
        views = list(self._manager.list()) if self._factory_enabled else []
        if self._factory_enabled:
            for message in tracker.republish(views):
                self._send(message)
        for feature in self._live:
            feature.on_bootstrap(tracker.twin, self._send_connected)
        current = {str(view.id) for view in views}
        stale = known_features.load(self._home_dir, thing) - current
        for cid in sorted(stale):
            info = self._send(tracker.twin.delete_container(cid))
            if info is not None:
                deleting[info.mid] = cid
        known = current | stale
        known_features.save(self._home_dir, thing, known)
        for extension in self._extensions:
            for message in extension.republish(tracker.twin):
                self._send(message)
        log.info("published %d container features for %s", len(views), thing)
        self._ready.set()
        if self.on_ready is not None:
            self.on_ready(self.identity or Identity(str(thing), tracker.twin.tenant_id))
        return known
