"""Monitor control: its command line, the sync report, exit records, and launch failures
(with stand-in monitor scripts for fault injection; the real one runs in integration)."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocirt.config.model import LogDriver, LogMode
from ocirt.errors import MonitorError, RuncError
from ocirt.runtime.monitor import (
    LogOptions,
    MonitorOptions,
    is_alive,
    launch,
    monitor_argv,
    monitor_binary,
    parse_exit_record,
    parse_sync,
    read_exit_record,
    runtime_text,
)


def options(tmp_path: Path, **kwargs: object) -> MonitorOptions:
    state = tmp_path / "s"
    defaults: dict[str, object] = {
        "container_id": "c1",
        "bundle": tmp_path / "bundle",
        "state_dir": state,
        "runtime_root": tmp_path / "runc",
        "log": LogOptions(path=state / "json.log"),
    }
    defaults.update(kwargs)
    return MonitorOptions(**defaults)  # type: ignore[arg-type]


def test_argv_carries_every_option(tmp_path: Path) -> None:
    opts = options(
        tmp_path,
        log=LogOptions(
            path=tmp_path / "json.log",
            max_size=1024,
            max_files=3,
            mode=LogMode.NON_BLOCKING,
            max_buffer=4096,
        ),
        tty=True,
        open_stdin=True,
        notify_socket=tmp_path / "n.sock",
        runtime="/usr/bin/crun",
    )
    argv = monitor_argv(Path("/x/ocirt-monitor"), opts, 7)
    pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert argv[0] == "/x/ocirt-monitor"
    assert pairs["--runtime"] == "/usr/bin/crun"
    assert pairs["--pid-file"] == str(tmp_path / "s" / "container.pid")
    assert pairs["--log-max-size"] == "1024" and pairs["--log-max-files"] == "3"
    assert pairs["--log-mode"] == "non-blocking" and pairs["--log-max-buffer"] == "4096"
    assert pairs["--sync-fd"] == "7"
    assert {"--tty", "--stdin", "--notify-socket", "--log-path"} <= set(argv)
    assert "--test-write-delay-ms" not in argv


def test_argv_for_driver_none_has_no_log_path(tmp_path: Path) -> None:
    opts = options(tmp_path, log=LogOptions(path=None, driver=LogDriver.NONE))
    argv = monitor_argv(Path("/m"), opts, 3)
    assert "--log-path" not in argv and argv[argv.index("--log-driver") + 1] == "none"


@pytest.mark.parametrize(
    "change",
    [
        {"bundle": Path("relative/bundle")},
        {"log": LogOptions(path=None)},
        {"log": LogOptions(path=Path("json.log"))},
        {"state_dir": Path("/" + "d" * 120)},
    ],
)
def test_argv_rejects_paths_the_monitor_cannot_use(tmp_path: Path, change: object) -> None:
    with pytest.raises(MonitorError):
        monitor_argv(Path("/m"), options(tmp_path, **change), 3)  # type: ignore[arg-type]


def test_sync_report_success_and_failure() -> None:
    ok = parse_sync(b'{"monitorPid":10}\n{"containerPid":11}\n')
    assert (ok.monitor_pid, ok.container_pid, ok.error) == (10, 11, None)
    bad = parse_sync(b'{"monitorPid":10}\n{"error":"e","stderr":"no config\\n","runtimeExit":1}\n')
    assert (bad.container_pid, bad.error, bad.runtime_stderr, bad.runtime_exit) == (
        None,
        "e",
        "no config",
        1,
    )


def test_runtime_text_keeps_the_messages_of_runc_json_log_lines() -> None:
    raw = (
        '{"level":"warning","msg":"cgroup v1 is old","time":"2024-01-02T03:04:05Z"}\n'
        '{"level":"error","msg":"runc run failed: invalid rootfs","time":"t"}\n'
        "\n"
        "Incorrect Usage.\n"
        '{"no":"msg"}\n'
        "[1]\n"
    )
    assert runtime_text(raw).splitlines() == [
        "cgroup v1 is old",
        "runc run failed: invalid rootfs",
        "Incorrect Usage.",
        '{"no":"msg"}',
        "[1]",
    ]


def test_argv_asks_for_run_only_when_starting(tmp_path: Path) -> None:
    assert "--start" not in monitor_argv(Path("/m"), options(tmp_path), 3)
    assert "--start" in monitor_argv(Path("/m"), options(tmp_path, start=True), 3)


@pytest.mark.parametrize("data", [b"{oops\n", b"[1]\n", b'{"monitorPid":"10"}\n'])
def test_malformed_sync_reports_are_monitor_errors(data: bytes) -> None:
    with pytest.raises(MonitorError):
        parse_sync(data)


def test_exit_record_parses_and_rejects_damage(tmp_path: Path) -> None:
    record = parse_exit_record(
        b'{"exitCode":137,"signal":9,"finishedAt":"2024-01-02T03:04:05.5Z",'
        b'"oomKilled":true,"droppedLogLines":4,"containerPid":99}\n'
    )
    assert record.exit_code == 137 and record.signal == 9 and record.oom_killed
    assert record.finished_at == datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)
    assert (record.dropped_log_lines, record.container_pid) == (4, 99)
    for damaged in (b"", b"{}", b'{"exitCode":"1","finishedAt":"x"}', b"[]", b'{"exitCode":1}'):
        with pytest.raises(MonitorError):
            parse_exit_record(damaged)
    assert read_exit_record(tmp_path) is None
    (tmp_path / "exit.json").write_bytes(b'{"exitCode":0,"finishedAt":"2024-01-02T03:04:05Z"}')
    read = read_exit_record(tmp_path)
    assert read is not None and (read.exit_code, read.signal, read.oom_killed) == (0, None, False)


def test_binary_is_in_libexec_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCIRT_MONITOR", raising=False)
    assert monitor_binary().parts[-3:] == ("ocirt", "libexec", "ocirt-monitor")
    monkeypatch.setenv("OCIRT_MONITOR", "/opt/m")
    assert monitor_binary() == Path("/opt/m")


def test_is_alive_only_for_a_live_monitor_process() -> None:
    # This process is alive but is not a monitor; a pid beyond pid_max does not exist.
    assert not is_alive(os.getpid())
    assert not is_alive(2**22 + 1)


def fake_monitor(tmp_path: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in monitor: the sync fd is the value after --sync-fd."""
    script = tmp_path / "fake-monitor"
    script.write_text(f'#!/bin/bash\nwhile [ "$1" != --sync-fd ]; do shift; done; fd=$2\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("OCIRT_MONITOR", str(script))


def test_launch_turns_a_runtime_failure_into_runc_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_monitor(
        tmp_path,
        """printf '{"monitorPid":1}\\n{"error":"runtime create failed","stderr":"bad bundle",'\
'"runtimeExit":1}\\n' >&$fd""",
        monkeypatch,
    )
    with pytest.raises(RuncError) as caught:
        launch(options(tmp_path))
    assert caught.value.stderr == "bad bundle" and caught.value.returncode == 1
    assert "bad bundle" in caught.value.message
    assert "create failed" in caught.value.message
    with pytest.raises(RuncError, match=r"run failed.*bad bundle"):
        launch(options(tmp_path, start=True))


def test_launch_reports_a_monitor_that_dies_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_monitor(tmp_path, "echo 'cannot exec runc' >&2; exit 1", monkeypatch)
    with pytest.raises(MonitorError, match=r"without a report.*cannot exec runc"):
        launch(options(tmp_path))


def test_launch_gives_up_on_a_monitor_that_never_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A subshell (same comm as the fake monitor, so it passes is_alive) keeps the sync
    # fd open and blocks in a builtin read; launch must give up and kill it.
    fifo, pidfile = tmp_path / "hang", tmp_path / "pid"
    fake_monitor(
        tmp_path,
        f"""mkfifo {fifo}
( echo $BASHPID > {pidfile}; echo "{{\\"monitorPid\\":$BASHPID}}" >&$fd
  read -t 30 <> {fifo} ) &""",
        monkeypatch,
    )
    with pytest.raises(MonitorError, match="did not report"):
        launch(options(tmp_path), timeout=0.5)
    # SIGKILL is delivered asynchronously; the process must be gone soon after.
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 30
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not is_alive(pid)


def test_launch_keeps_systemds_notify_socket_from_runc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under Type=notify the daemon has NOTIFY_SOCKET; runc given it waits for READY=1
    # from the container (sd_notify passthrough), so every create+start would hang.
    seen = tmp_path / "seen"
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    fake_monitor(
        tmp_path,
        f"""echo "${{NOTIFY_SOCKET-unset}}" > {seen}
printf '{{"monitorPid":1}}\\n{{"error":"stop here","stderr":"","runtimeExit":1}}\\n' >&$fd""",
        monkeypatch,
    )
    with pytest.raises(RuncError):
        launch(options(tmp_path))
    assert seen.read_text().strip() == "unset"


def test_launch_without_a_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCIRT_MONITOR", str(tmp_path / "missing"))
    with pytest.raises(MonitorError, match="not found"):
        launch(options(tmp_path))


# -- options from a definition, the handle file ------------------------------------------


def test_options_for_a_definition_turn_sizes_into_bytes(tmp_path: Path) -> None:
    from ocirt.config.model import ContainerConfig, ContainerDefinition, ContainerId, LogConfig
    from ocirt.runtime.monitor import options_for

    log = LogConfig(max_size="10M", max_files=0, mode=LogMode.NON_BLOCKING, max_buffer_size="2k")
    definition = ContainerDefinition(ContainerId("c1"), "c1", "img", ContainerConfig(log=log))
    options = options_for(
        definition,
        bundle=tmp_path / "b",
        state_dir=tmp_path / "s",
        log_path=tmp_path / "json.log",
        runtime_root=tmp_path / "r",
    )
    assert options.log.path == tmp_path / "json.log"
    assert options.log.max_size == 10 * 1024 * 1024
    assert options.log.max_files == 1
    assert options.log.max_buffer == 2 * 1024
    assert options.start
    none = options_for(
        replace(definition, config=ContainerConfig(log=LogConfig(driver=LogDriver.NONE))),
        bundle=tmp_path / "b",
        state_dir=tmp_path / "s",
        log_path=tmp_path / "json.log",
        runtime_root=tmp_path / "r",
    )
    assert (none.log.path, none.log.max_size, none.log.max_buffer) == (None, -1, 1_000_000)


def test_the_handle_round_trips_and_damage_reads_as_none(tmp_path: Path) -> None:
    from ocirt.runtime.monitor import MonitorHandle, read_handle, read_monitor_pid, write_handle

    write_handle(MonitorHandle(321, 654, tmp_path))
    assert (tmp_path / "handle.json").read_text() == '{"monitorPid":321,"pid":654}\n'
    assert read_handle(tmp_path) == MonitorHandle(321, 654, tmp_path)
    assert read_monitor_pid(tmp_path) == 321
    for damaged in ("{", "[]", '{"monitorPid": true}', '{"monitorPid": -4}', '{"pid": 5}'):
        (tmp_path / "handle.json").write_text(damaged)
        assert read_handle(tmp_path) is None, damaged
    (tmp_path / "handle.json").unlink()
    assert read_monitor_pid(tmp_path) is None
