"""The manager's runtime: the `runtime` setting is looked up once, at construction, and
the monitor is given the absolute path (a stand-in monitor records what it was given;
the real one runs in integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirt.config.model import ContainerConfig, ContainerDefinition, ContainerId
from ocirt.errors import RuncError
from ocirt.runtime.monitored import MonitoredRunc


def _executable(path: Path, body: str = "exit 0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)
    return path


def _launch_records_runtime(
    runtime: MonitoredRunc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, RuncError]:
    """Launch with a stand-in monitor that writes its --runtime argument down and reports
    a runtime failure; the argument and the error."""
    seen = tmp_path / "seen"
    monitor = _executable(
        tmp_path / "fake-monitor",
        f"""while [ $# -gt 0 ]; do
  case $1 in --runtime) echo "$2" > {seen};; --sync-fd) fd=$2;; esac; shift
done
printf '{{"monitorPid":1}}\\n{{"error":"x","stderr":"bad","runtimeExit":1}}\\n' >&$fd""",
    )
    monkeypatch.setenv("OCIRT_MONITOR", str(monitor))
    definition = ContainerDefinition(ContainerId("c1"), "c1", "img", ContainerConfig())
    with pytest.raises(RuncError) as caught:
        runtime.launch(definition, tmp_path / "b", tmp_path / "s", tmp_path / "json.log")
    return seen.read_text().strip(), caught.value


def test_a_runtime_name_reaches_the_monitor_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _executable(tmp_path / "bin" / "myrunc")
    monkeypatch.setenv("PATH", f"{tmp_path / 'empty'}:{tmp_path / 'bin'}")
    runtime = MonitoredRunc(tmp_path / "root", "myrunc")
    # Looked up once: a later PATH does not matter any more.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    given, error = _launch_records_runtime(runtime, tmp_path, monkeypatch)
    assert given == str(found)
    assert runtime.runc.binary == str(found)
    # Messages still name the runtime, not its path.
    assert error.message.startswith("myrunc run failed for container c1")


def test_an_absolute_runtime_path_is_passed_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    runtime = MonitoredRunc(tmp_path / "root", "/opt/elsewhere/crun")
    given, _ = _launch_records_runtime(runtime, tmp_path, monkeypatch)
    assert given == "/opt/elsewhere/crun"


def test_a_runtime_not_found_fails_the_construction_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuncError, match=r"runtime binary 'myrunc' not found on PATH"):
        MonitoredRunc(tmp_path / "root", "myrunc")
