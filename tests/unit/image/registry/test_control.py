"""A pull's limits and its cancellation (PullControl)."""

from __future__ import annotations

import socket
import threading

import pytest

from ocirt.errors import RegistryUnavailable
from ocirt.image.registry.control import (
    PullCancelled,
    PullControl,
    PullDeadlineExceeded,
    PullStalled,
)


def test_the_read_timeout_is_the_stall_timeout_when_the_deadline_is_far() -> None:
    control = PullControl("r", stall_timeout=5.0, deadline=3600.0)
    assert control.read_timeout() == 5.0
    assert PullControl("r", stall_timeout=5.0, deadline=None).read_timeout() == 5.0


def test_the_read_timeout_shrinks_to_what_is_left_of_the_deadline() -> None:
    control = PullControl("r", stall_timeout=3600.0, deadline=10.0)
    assert 0 < control.read_timeout() <= 10.0


def test_a_timeout_is_a_stall_until_the_deadline_passed() -> None:
    control = PullControl("img:1", stall_timeout=7.0, deadline=None)
    stall = control.timed_out("while downloading x")
    assert isinstance(stall, PullStalled)
    assert stall.message == "img:1: registry stalled: no data for 7 s while downloading x"
    control.cancel("cancelled: stopping")
    assert isinstance(control.timed_out("x"), PullCancelled)


def test_an_exhausted_deadline_is_named() -> None:
    control = PullControl("img:1", deadline=1e-9)
    with pytest.raises(PullDeadlineExceeded, match=r"^img:1: pull did not finish within its"):
        control.check()
    with pytest.raises(PullDeadlineExceeded):
        control.read_timeout()


def test_interruptions_keep_the_partial_download() -> None:
    # The service keeps a partial blob for RegistryUnavailable and discards it otherwise.
    for error in (PullStalled, PullDeadlineExceeded, PullCancelled):
        assert issubclass(error, RegistryUnavailable)


def test_cancel_wakes_a_read_blocked_on_a_tracked_socket() -> None:
    control = PullControl("img:1", stall_timeout=3600.0, deadline=None)
    ours, theirs = socket.socketpair()
    got: list[bytes] = []
    try:
        control.track(ours)
        reader = threading.Thread(target=lambda: got.append(ours.recv(10)))
        reader.start()
        control.cancel()
        reader.join(60)
        assert not reader.is_alive() and got == [b""]
        with pytest.raises(PullCancelled, match=r"^img:1: pull cancelled$"):
            control.check()
        late, other = socket.socketpair()
        try:
            control.track(late)  # tracked after the cancel: shut at once
            assert late.recv(10) == b""
        finally:
            late.close()
            other.close()
    finally:
        ours.close()
        theirs.close()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PullControl("r", stall_timeout=0)
    with pytest.raises(ValueError):
        PullControl("r", deadline=-1)
