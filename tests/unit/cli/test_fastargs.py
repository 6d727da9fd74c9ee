"""ocirt.cli.fastargs against argparse, side by side on the same declarations: where the
fast parser answers it gives argparse's values, and where argparse refuses it gives up."""

from __future__ import annotations

import importlib

import pytest

from ocirt.cli.common import CliError
from ocirt.cli.fastargs import FastParser
from ocirt.cli.main import COMMANDS, FAST_COMMANDS, command_parser

# (command, argv, whether the fast parser must answer it itself)
CASES = [
    ("list", [], True),
    ("list", ["-q", "--filter", "status=running", "--filter=image=x"], True),
    ("list", ["--socket", "/s", "--timeout", "2", "--json", "-n", "web"], True),
    ("list", ["--filter"], False),  # argparse: expected one argument
    ("list", ["extra"], False),  # argparse: unrecognized arguments
    ("list", ["-qn", "web"], False),  # combined short flags: argparse's business
    ("list", ["--qui"], False),  # an abbreviation
    ("list", ["--help"], False),
    ("get", ["web"], True),
    ("get", ["-n", "web", "--kanto"], True),
    ("get", ["--kanto=1", "web"], False),
    ("get", ["a", "b"], False),
    ("get", ["--", "web"], False),
    ("start", ["web"], True),
    ("start", [], True),  # no container: the command says so, in Kanto's words
    ("stop", ["-t", "15s", "web"], True),
    ("stop", ["web", "--time=1m15s", "-f", "-s", "SIGINT"], True),
    ("stop", ["web", "-t", "-5s"], False),
    ("stop", ["-t5", "web"], False),
    ("logs", ["--tail", "-1", "-f", "web"], True),
    ("logs", ["-t", "5", "--since", "10m", "web"], True),
    ("logs", ["--tail", "many", "web"], False),  # int(): argparse's usage error
    ("logs", ["--tail", "-1.5", "web"], False),
    ("pause", ["-n", "web"], True),
    ("resume", ["web", "--json"], True),
    ("remove", ["a", "b", "c"], True),
    ("remove", ["-f", "-t", "10s", "a", "b"], True),
    ("remove", ["a", "-f", "b"], False),  # argparse: unrecognized arguments: b
    ("remove", [], True),
    ("rename", ["web", "db"], True),
    ("rename", ["-n", "web", "db"], True),
    ("rename", [], False),
    ("update", ["--rp", "always", "--rp-cnt", "3", "--rp-to", "2.5", "-m", "64M", "web"], True),
    ("update", ["--memory-swap", "-1", "web"], True),
    ("update", ["--rp-cnt", "x", "web"], False),
    ("sysinfo", ["--json"], True),
    ("sysinfo", ["x"], False),
    ("daemon", [], True),
    ("daemon", ["--config", "/c.json", "--log-level", "DEBUG", "--cgroup-parent=x"], True),
    ("daemon", ["--cfg-file=/c.json", "--stop-containers-on-exit"], True),
    ("daemon", ["--things-enable=false", "--net-tbr-disable", "--log-syslog", "0"], True),
    ("daemon", ["--log-syslog", "--net-br-mtu", "1400"], True),
    ("daemon", ["--ccl-insecure-registries", "a:5000,b", "--ccl-insecure-registries=c"], True),
    ("daemon", ["--net-br-mtu", "-1", "--log-file-count=3"], True),
    ("daemon", ["--things-enable=maybe"], False),  # argparse's usage error
    ("daemon", ["--things-enable", "maybe"], False),
    ("daemon", ["--net-br-mtu", "many"], False),
    ("daemon", ["--log-level"], False),
    ("daemon", ["--log-lev", "DEBUG"], False),  # an abbreviation
    ("daemon", ["stray"], False),
    ("daemon", ["--help"], False),
]


def argparse_result(command: str, argv: list[str]) -> dict[str, object] | None:
    parser = command_parser(command)
    try:
        values = vars(parser.parse_args(argv))
    except SystemExit:
        return None
    del values["run"]
    return values


@pytest.mark.parametrize(("command", "argv", "fast"), CASES)
def test_same_values_as_argparse_or_none(
    command: str, argv: list[str], fast: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert command in FAST_COMMANDS
    parser = FastParser()
    importlib.import_module(f"ocirt.cli.{COMMANDS[command][0]}").add_arguments(parser)
    got = parser.parse(argv)
    expected = argparse_result(command, argv)
    capsys.readouterr()
    assert (got is not None) == fast, (got, expected)
    if got is not None:
        assert vars(got) == expected
    if expected is None:
        assert got is None


def test_global_defaults_apply_to_declared_options_only() -> None:
    parser = FastParser()
    importlib.import_module("ocirt.cli.list_cmd").add_arguments(parser)
    got = parser.parse([], {"socket": "/g", "timeout": 5.0, "colour": "red"})
    assert got is not None
    assert (got.socket, got.timeout) == ("/g", 5.0)
    assert not hasattr(got, "colour")
    got = parser.parse(["--socket", "/own"], {"socket": "/g"})
    assert got is not None and got.socket == "/own"


def test_a_bad_duration_is_the_commands_error_in_both() -> None:
    parser = FastParser()
    importlib.import_module("ocirt.cli.stop_cmd").add_arguments(parser)
    with pytest.raises(CliError, match='time: invalid duration "soon"'):
        parser.parse(["-t", "soon", "web"])
    with pytest.raises(CliError, match='time: invalid duration "soon"'):
        command_parser("stop").parse_args(["-t", "soon", "web"])


def test_what_it_does_not_know_is_left_to_argparse() -> None:
    parser = FastParser()
    parser.add_argument("--level", choices=["a"], action="count")
    assert parser.parse([]) is None
    parser = FastParser()
    parser.add_argument("command", nargs="...")
    assert parser.parse(["x"]) is None
