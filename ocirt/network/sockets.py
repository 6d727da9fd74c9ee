"""Host-port reservations: a bound socket held per published port. Does I/O (sockets).

Without a userland proxy nothing on the host owns a published port, so another container or
a host service could take it. As Docker's "dummy proxy" does (docs/runtime-notes.md §4.1), the
manager holds a TCP listener or a bound UDP socket for each one. The DNAT rules take the
traffic before it reaches these sockets. Reservations die with the process, so the network
facade takes them again at reconcile. Sockets are close-on-exec (Python's default), so they
never leak into runc or a container.
"""

from __future__ import annotations

import errno
import socket
import threading
from ipaddress import IPv4Address

from ocirt.config.model import PortProtocol
from ocirt.errors import NetworkError


class PortReservations:
    """Sockets held per owner (container id). Thread-safe."""

    def __init__(self) -> None:
        self._held: dict[str, list[socket.socket]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _bind(proto: PortProtocol, host_ip: IPv4Address, port: int) -> socket.socket:
        kind = socket.SOCK_STREAM if proto is PortProtocol.TCP else socket.SOCK_DGRAM
        sock = socket.socket(socket.AF_INET, kind)
        try:
            sock.bind((str(host_ip), port))
            if proto is PortProtocol.TCP:
                sock.listen(1)
        except BaseException:
            sock.close()
            raise
        return sock

    def reserve(self, owner: str, proto: PortProtocol, host_ip: IPv4Address, ports: range) -> int:
        """Take the first free port of `ports` (0 = any) and return it."""
        last_error: OSError | None = None
        for port in ports:
            try:
                sock = self._bind(proto, host_ip, port)
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise NetworkError(
                        f"cannot reserve {proto.value} port {host_ip}:{port}: {exc}"
                    ) from exc
                last_error = exc
                continue
            with self._lock:
                self._held.setdefault(owner, []).append(sock)
            return int(sock.getsockname()[1])
        span = f"{ports.start}" if len(ports) == 1 else f"{ports.start}-{ports.stop - 1}"
        raise NetworkError(
            f"Bind for {host_ip}:{span}/{proto.value} failed: port is already allocated"
        ) from last_error

    def release(self, owner: str) -> None:
        with self._lock:
            held = self._held.pop(owner, [])
        for sock in held:
            sock.close()

    def owners(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def close(self) -> None:
        for owner in list(self.owners()):
            self.release(owner)
