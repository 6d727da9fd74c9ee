"""Host-port reservations hold real sockets on loopback."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

import pytest

from ocirt.config.model import PortProtocol
from ocirt.errors import NetworkError
from ocirt.network.sockets import PortReservations

LOOPBACK = IPv4Address("127.0.0.1")


def test_a_reserved_port_cannot_be_taken_again() -> None:
    ports = PortReservations()
    try:
        port = ports.reserve("a", PortProtocol.TCP, LOOPBACK, range(0, 1))
        with pytest.raises(NetworkError, match="already allocated"):
            ports.reserve("b", PortProtocol.TCP, LOOPBACK, range(port, port + 1))
        # UDP is a separate space.
        assert ports.reserve("b", PortProtocol.UDP, LOOPBACK, range(port, port + 1)) == port
    finally:
        ports.close()


def test_a_range_takes_the_first_free_port_and_release_frees_it() -> None:
    ports = PortReservations()
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 0))
        first = blocker.getsockname()[1]
        got = ports.reserve("a", PortProtocol.TCP, LOOPBACK, range(first, first + 4))
        assert first < got < first + 4
        ports.release("a")
        assert ports.owners() == set()
        with socket.socket() as again:
            again.bind(("127.0.0.1", got))
    finally:
        blocker.close()
        ports.close()
