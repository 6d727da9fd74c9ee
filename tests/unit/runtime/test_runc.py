"""The runc driver's pure parts: the memory document and the "not running" refusal."""

from __future__ import annotations

import pytest

from ocirt.config.model import Resources
from ocirt.errors import RuncError
from ocirt.runtime.runc import MemoryUpdate, _signal_name, is_not_running, memory_update


def test_memory_update_from_resources() -> None:
    update = memory_update(Resources(memory="64M", memory_reservation="", memory_swap="-1"))
    assert update == MemoryUpdate(limit=64 * 1024 * 1024, reservation=-1, swap=-1)


def test_not_running_refusals() -> None:
    # As runc answers a kill of an exited container (its stderr is in the message).
    assert is_not_running(RuncError("runc kill failed", stderr="container not running\n"))
    assert is_not_running(RuncError("runc kill failed", stderr="container is stopped"))
    assert not is_not_running(RuncError("runc kill failed", stderr="permission denied"))


def test_signals_go_through_the_one_parser_as_runc_errors() -> None:
    assert _signal_name(15) == "15"
    assert _signal_name("term") == "SIGTERM"
    for bad in ("SIG_IGN", "0", "256"):
        with pytest.raises(RuncError, match=f"invalid signal = {bad}"):
            _signal_name(bad)
