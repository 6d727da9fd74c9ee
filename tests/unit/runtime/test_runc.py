"""The runc driver's pure parts (the memory document, the "not running" refusal) and the
look-up of the runtime binary on PATH."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocirt.config.model import Resources
from ocirt.errors import NotFound, RuncError
from ocirt.runtime.runc import (
    MemoryUpdate,
    Runc,
    _signal_name,
    is_not_running,
    memory_update,
    resolve_binary,
)


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


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_an_absolute_runtime_path_is_used_as_given(tmp_path: Path) -> None:
    # Not looked up and not checked: the setting names the file to execute.
    assert resolve_binary("/opt/nowhere/crun") == "/opt/nowhere/crun"


def test_a_runtime_name_is_found_on_path_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first directory has a non-executable file of that name, which execvp skips too.
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "myrunc").write_text("not executable")
    found = _executable(tmp_path / "b" / "myrunc")
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty'}:{tmp_path / 'a'}:{tmp_path / 'b'}")
    resolved = resolve_binary("myrunc")
    assert resolved == str(found)
    assert os.path.isabs(resolved)


def test_a_runtime_name_not_on_path_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuncError, match=r"runtime binary 'no-such-runc' not found on PATH"):
        resolve_binary("no-such-runc")


def test_runc_messages_name_the_runtime_not_its_path(tmp_path: Path) -> None:
    runtime = _executable(tmp_path / "bin" / "myrunc")
    runtime.write_text("#!/bin/sh\necho 'container x does not exist' >&2\nexit 1\n")
    runc = Runc(tmp_path / "root", str(runtime))
    with pytest.raises(NotFound) as caught:
        runc.kill("x")
    assert caught.value.message == "myrunc: container x does not exist"
