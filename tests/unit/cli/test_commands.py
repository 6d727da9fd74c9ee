"""The container commands end to end against the real local API server over a unix
socket in a temp dir, with the in-memory FakeManager behind it: what a user types, what
the daemon is asked, what is printed and the exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ocirt.cli.main import main
from ocirt.config.model import ContainerId
from ocirt.daemon.localapi import ApiHandlers, LocalApi
from ocirt.logs.jsonline import LogEntry, LogStream
from tests.support.fake_manager import FakeManager


class LoggingManager(FakeManager):
    """FakeManager plus `logs`, which the local API serves and the things front end does not."""

    def __init__(self) -> None:
        super().__init__()
        self.log_calls: list[tuple[str, int | None, datetime | None, bool]] = []

    def logs(
        self, cid: ContainerId, *, tail: int | None, since: datetime | None, follow: bool
    ) -> Iterator[LogEntry]:
        self.log_calls.append((cid, tail, since, follow))
        when = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
        yield LogEntry(LogStream.STDOUT, "out line\n", when)
        yield LogEntry(LogStream.STDERR, "err line\n", when)


@dataclass
class Cli:
    socket: Path
    manager: LoggingManager
    capsys: pytest.CaptureFixture[str]

    def __call__(self, command: str, *argv: str) -> tuple[int, str, str]:
        code = main([command, "--socket", str(self.socket), "--timeout", "10", *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, command: str, *argv: str) -> Any:
        code, out, err = self(command, "--json", *argv)
        assert (code, err) == (0, "")
        return json.loads(out)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ApiHandlers]]:
    # One server for the module (its close waits out a poll interval); each test gets a
    # fresh manager behind it.
    path = tmp_path_factory.mktemp("cli") / "run" / "ocirt.sock"
    handlers = ApiHandlers(LoggingManager(), lambda: {"version": "9.9", "containers": 0})
    api = LocalApi(path, handlers)
    api.start()
    try:
        yield path, handlers
    finally:
        api.close()


@pytest.fixture
def cli(server: tuple[Path, ApiHandlers], capsys: pytest.CaptureFixture[str]) -> Cli:
    path, handlers = server
    handlers.manager = LoggingManager()
    return Cli(path, handlers.manager, capsys)


def test_create_prints_the_id_and_start_runs_it(cli: Cli) -> None:
    code, out, err = cli("create", "-n", "web", "--e", "A=1", "img:1", "sh", "-c", "true")
    assert (code, err) == (0, "")
    cid = out.strip()
    view = cli.manager.get(ContainerId(cid))
    assert (view.name, view.image_ref) == ("web", "img:1")
    assert view.config.env == ("A=1",)
    assert view.config.cmd == ("sh", "-c", "true")
    assert cli("start", "web")[:2] == (0, "")
    assert cli.manager.get(ContainerId(cid)).state.status.name == "RUNNING"


def test_create_with_start_and_json(cli: Cli) -> None:
    created = cli.json("create", "--start", "img")
    assert created["state"]["status"] == "RUNNING"
    assert [call[0] for call in cli.manager.calls] == ["create", "start"]


def test_create_from_a_descriptor_file(cli: Cli, tmp_path: Path) -> None:
    descriptor = tmp_path / "web.json"
    descriptor.write_text(json.dumps({"container_name": "web", "image": {"name": "img:2"}}))
    code, out, _ = cli("create", "-f", str(descriptor))
    assert code == 0
    assert cli.manager.get(ContainerId(out.strip())).image_ref == "img:2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-f", "/nonexistent/x.json"], "Error: cannot read /nonexistent/x.json"),
        (
            ["-f", "/dev/null", "img"],
            "Error: no arguments are expected when creating a container from file",
        ),
        (
            ["-f", "/dev/null", "--privileged"],
            "Error: no other flags are expected when creating a container from file",
        ),
        (
            ["-f", "/dev/null", "-n", "x"],
            "Error: no other flags are expected when creating a container from file",
        ),
        ([], "Error: container image argument is expected"),
        (["--e", "1x", "img"], "Error: invalid environmental variable declaration"),
    ],
)
def test_create_refusals(cli: Cli, argv: list[str], message: str) -> None:
    code, out, err = cli("create", *argv)
    assert (code, out) == (1, "")
    assert err.startswith(message)


def test_lifecycle_commands_by_name(cli: Cli) -> None:
    cli("create", "-n", "web", "--start", "img")
    assert cli.json("pause", "web")["state"]["status"] == "PAUSED"
    assert cli.json("resume", "web")["state"]["status"] == "RUNNING"
    stopped = cli.json("stop", "-t", "4", "web")
    assert stopped["state"]["status"] == "STOPPED"
    options = cli.manager.calls[-1][2]
    # A plain stop ends in SIGKILL after the grace period (docs/kanto-compatibility.md decision 11).
    assert (options.signal, options.timeout, options.force) == ("SIGTERM", 4.0, True)
    assert cli.json("rename", "web", "db")["name"] == "db"
    assert cli.json("get", "db")["name"] == "db"


def test_stop_with_a_signal_keeps_kantos_force_meaning(cli: Cli) -> None:
    cli("create", "-n", "web", "--start", "img")
    assert cli("stop", "-s", "SIGINT", "web")[:3] == (0, "", "")
    options = cli.manager.calls[-1][2]
    assert (options.signal, options.force) == ("SIGINT", False)
    cli("start", "web")
    cli("stop", "-s", "SIGINT", "-f", "web")
    assert cli.manager.calls[-1][2].force is True


def test_refused_operation_prints_the_daemons_message(cli: Cli) -> None:
    cid = cli("create", "-n", "web", "img")[1].strip()
    code, out, err = cli("pause", "web")
    assert (code, out) == (1, "")
    assert err == f"Error: container with id = {cid} is not running - current status is Created\n"
    code, _, err = cli("get", "nothing")
    assert (code, err) == (1, "Error: The requested container with ID = nothing was not found.\n")


def test_update_sends_the_flags(cli: Cli) -> None:
    cli("create", "-n", "web", "img")
    got = cli.json("update", "--rp", "on-failure", "--rp-cnt", "3", "--rp-to", "5", "web")
    assert got["config"]["restartPolicy"] == {
        "type": "ON_FAILURE",
        "maxRetryCount": 3,
        "retryTimeout": 5,
    }
    assert cli("update", "-m", "64M", "web")[:3] == (0, "", "")
    update = cli.manager.calls[-1][2]
    assert update.resources is not None and update.resources.memory == "64M"


def test_list_as_table_quiet_json_and_filtered(cli: Cli) -> None:
    first = cli("create", "-n", "web", "--start", "img:1")[1].strip()
    second = cli("create", "-n", "db", "img:2")[1].strip()
    code, out, _ = cli("list")
    assert code == 0
    # Go's tabwriter (minwidth 8, tabwidth 8, padding 0, '\t' padding, Debug) over
    # kanto-cm's "%-37s\t%-37s\t%-60s\t%-10s\t%-32s\t%-10s\t\n": every cell is padded
    # with spaces to its width, then one tab reaches the next multiple of 8, except the
    # 32-wide Finished At, already on one; a '|' ends each column.
    assert out.split("\n") == [
        "",
        "ID" + " " * 35 + "\t|Name" + " " * 33 + "\t|Image" + " " * 55 + "\t|Status    \t|"
        "Finished At" + " " * 21 + "|Exit Code \t|",
        "-" * 37
        + "\t|"
        + "-" * 37
        + "\t|"
        + "-" * 60
        + "\t|"
        + "-" * 10
        + "\t|"
        + "-" * 30
        + "  |"
        + "-" * 10
        + "\t|",
        first
        + " " * 35
        + "\t|web"
        + " " * 34
        + "\t|img:1"
        + " " * 55
        + "\t|Running   \t|"
        + " " * 32
        + "|0"
        + " " * 9
        + "\t|",
        second
        + " " * 35
        + "\t|db"
        + " " * 35
        + "\t|img:2"
        + " " * 55
        + "\t|Created   \t|"
        + " " * 32
        + "|0"
        + " " * 9
        + "\t|",
        "",
        "",
    ]
    # kanto-cm -q: the ids on one line.
    assert cli("list", "-q")[1] == f"{first} {second}\n"
    assert cli("list", "-n", "db", "-q")[1] == f"{second}\n"
    assert cli("list", "--filter", "status=created", "-q")[1].split() == [second]
    assert cli("list", "--filter", "image=img:1", "-q")[1].split() == [first]
    assert [c["name"] for c in cli.json("list")] == ["web", "db"]


def test_list_refuses_an_unknown_filter(cli: Cli) -> None:
    assert cli("list", "--filter", "colour=red") == (1, "", "Error: no filter: colour\n")
    assert cli("list", "--filter", "exitcode=x") == (
        1, "", 'Error: strconv.Atoi: parsing "x": invalid syntax\n'
    )  # fmt: skip


def test_list_of_nothing(cli: Cli) -> None:
    assert cli("list") == (0, "No containers found.\n", "")
    assert cli("list", "-q") == (0, "", "")


def test_remove_goes_on_after_a_failure_and_exits_1(cli: Cli) -> None:
    web = cli("create", "-n", "web", "img")[1].strip()
    code, out, err = cli("remove", "--json", "nothing", "web")
    assert code == 1
    assert err == "Error: The requested container with ID = nothing was not found.\n"
    assert json.loads(out) == [{"id": web}]
    assert cli.manager.list() == []


def test_remove_force_stops_a_running_one(cli: Cli) -> None:
    cli("create", "-n", "web", "--start", "img")
    assert cli("remove", "web")[0] == 1
    assert cli("remove", "-f", "web")[:3] == (0, "", "")
    assert cli.manager.calls[-1][2] is True


def test_sysinfo_as_text_and_json(cli: Cli) -> None:
    assert cli("sysinfo") == (0, "version: 9.9\ncontainers: 0\n", "")
    assert cli.json("sysinfo") == {"version": "9.9", "containers": 0}


def test_logs_split_streams_and_send_the_options(cli: Cli) -> None:
    cid = cli("create", "-n", "web", "img")[1].strip()
    code, out, err = cli("logs", "--tail", "5", "--since", "2024-05-01T00:00:00Z", "web")
    assert (code, out, err) == (0, "out line\n", "err line\n")
    since = datetime(2024, 5, 1, tzinfo=UTC)
    assert cli.manager.log_calls == [(cid, 5, since, False)]
    code, out, _ = cli("logs", "--json", "--tail", "-1", "-f", "web")
    assert [json.loads(line)["stream"] for line in out.splitlines()] == ["stdout", "stderr"]
    assert cli.manager.log_calls[-1] == (cid, None, None, True)


def test_logs_of_a_missing_container(cli: Cli) -> None:
    assert cli("logs", "nothing") == (
        1,
        "",
        "Error: The requested container with ID = nothing was not found.\n",
    )


def test_no_daemon_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["list", "--socket", str(tmp_path / "absent.sock")])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("Error: cannot reach the ocirt daemon at ")


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ocirt.cli import common

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(common, "call", interrupted)
    monkeypatch.setattr("ocirt.cli.get_cmd.call", interrupted)
    assert main(["get", "--socket", str(tmp_path / "s"), "web"]) == 130


# kanto-cm's habits (issue 13, item 4).


@pytest.mark.parametrize("command", ["start", "stop", "get", "logs", "update", "pause", "remove"])
def test_a_container_by_name_and_kantos_texts(cli: Cli, command: str) -> None:
    cli("create", "-n", "web", "img")
    assert cli(command, "-n", "nope") == (
        1,
        "",
        "Error: The requested container with name = nope was not found. Try using an ID instead.\n",
    )
    assert cli(command) == (
        1,
        "",
        "Error: You must provide either an ID or a name for the container via --name (-n) \n",
    )
    assert cli(command, "-n", "web", "c1") == (
        1,
        "",
        "Error: Container ID and --name (-n) cannot be provided at the same time - use only "
        "one of them\n",
    )


def test_name_flag_reaches_the_container(cli: Cli) -> None:
    cid = cli("create", "-n", "web", "img")[1].strip()
    assert cli("start", "-n", "web")[:2] == (0, "")
    assert cli.json("get", "-n", "web")["id"] == cid
    assert cli("rename", "-n", "web", "db")[0] == 0
    assert cli.json("get", cid)["name"] == "db"
    assert cli("rename", cid, "web")[0] == 0
    assert cli("stop", "-n", "web")[:2] == (0, "")
    assert cli("remove", "-n", "web")[:2] == (0, "")
    assert cli.manager.list() == []


def test_stop_takes_go_durations_and_otherwise_leaves_the_timeout_to_the_daemon(
    cli: Cli,
) -> None:
    cli("create", "-n", "web", "--start", "img")
    grace = [
        (["-t", "1m15s"], 75.0),
        (["-t", "15s"], 15.0),
        (["-t", "2.5"], 2.5),
        (["--time=500ms"], 0.5),
        # No -t: none is sent; the manager applies its default (a plain stop).
        ([], None),
    ]
    for flags, seconds in grace:
        assert cli("stop", *flags, "web")[:3] == (0, "", "")
        assert cli.manager.calls[-1][2].timeout == seconds
        cli("start", "web")
    assert cli("stop", "-t", "soon", "web") == (
        1, "", 'Error: time: invalid duration "soon"\n'
    )  # fmt: skip
    assert cli("stop", "-t", "15", "-t", "5x", "web") == (
        1, "", 'Error: time: unknown unit "x" in duration "5x"\n'
    )  # fmt: skip
    assert cli("stop", "--time=-5s", "web")[2].startswith("Error: invalid duration '-5s'")


def test_forced_remove_with_a_grace_period(cli: Cli) -> None:
    cli("create", "-n", "web", "--start", "img")
    assert cli("remove", "-t", "10s", "web") == (
        1, "", "Error: -t/--time applies to a forced remove only: add -f\n"
    )  # fmt: skip
    assert cli("remove", "-f", "-t", "1m", "web")[:3] == (0, "", "")
    assert [c[0] for c in cli.manager.calls[-2:]] == ["stop", "remove"]
    assert cli.manager.calls[-2][2].timeout == 60.0


def test_a_unique_id_prefix_names_a_container(cli: Cli) -> None:
    cid = cli("create", "-n", "web", "img")[1].strip()
    assert cid == "c1"
    cli("create", "-n", "db", "img")
    assert cli.json("get", "c1")["name"] == "web"
    code, _, err = cli("get", "c")
    assert code == 1
    assert err == (
        "Error: The container ID prefix = c is ambiguous: it matches 2 containers (c1, c2). "
        "Give more of the ID.\n"
    )


def test_get_in_kantos_model_with_kantos_indent(cli: Cli) -> None:
    cli("create", "-n", "web", "img")
    code, out, _ = cli("get", "--kanto", "-n", "web")
    assert code == 0
    got = json.loads(out)
    assert (got["container_name"], got["state"]["status"]) == ("web", 1)
    assert '\n   "container_id": "c1",\n' in out


def test_create_from_a_file_with_start_starts_it(cli: Cli, tmp_path: Path) -> None:
    descriptor = tmp_path / "web.json"
    descriptor.write_text(json.dumps({"container_name": "web", "image": {"name": "img"}}))
    created = cli.json("create", "-f", str(descriptor), "--start")
    assert created["state"]["status"] == "RUNNING"
    assert [call[0] for call in cli.manager.calls] == ["create", "start"]


def test_global_options_before_the_command(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    cli("create", "-n", "web", "img")
    assert main(["--host", str(cli.socket), "--timeout", "5s", "list", "-q"]) == 0
    assert capsys.readouterr() == ("c1\n", "")
    assert main([f"--socket={cli.socket}", "get", "web"]) == 0
    assert json.loads(capsys.readouterr()[0])["id"] == "c1"
    assert main(["--host", f"unix://{cli.socket}", "list", "-q"]) == 0
    assert capsys.readouterr() == ("c1\n", "")
    assert main(["--host", "tcp://127.0.0.1:1", "list"]) == 1
    assert capsys.readouterr()[1].startswith("Error: unsupported daemon address")


def test_version_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from ocirt import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr() == (f"ocirt version {__version__}\n", "")
    assert main(["--help"]) == 0
    assert "  list " in capsys.readouterr()[0]
    assert main([]) == 2
    assert "a command is required" in capsys.readouterr()[1]
    assert main(["teleport"]) == 2
    assert "unknown command 'teleport'" in capsys.readouterr()[1]
    assert main(["--debug", "list"]) == 2
    assert "unknown global option --debug" in capsys.readouterr()[1]


def test_ps_is_list(cli: Cli) -> None:
    cli("create", "-n", "web", "--start", "img:1")
    assert cli("ps") == cli("list")
    assert cli("ps", "-q") == cli("list", "-q")
