"""`ocirt image encrypt`'s argument checks and `ocirt daemon`'s start-up errors (the parts
that need neither a daemon nor root; the daemon-backed image commands are in
test_image_cmd.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocirt.cli import image_cmd
from ocirt.cli.main import main


@pytest.mark.parametrize("layout", ["", ":tag", "dir:"])
def test_image_encrypt_refuses_a_bad_layout_argument(
    layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["image", "encrypt", "--recipient", "jwe:/k.pem", layout, str(tmp_path / "out")]
    assert main(argv) == 1
    assert capsys.readouterr().err == f"Error: invalid layout {layout!r}: want PATH[:TAG]\n"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (1023, "1023B"),
        (1536, "1.5KB"),
        (5 * 1024**2, "5.0MB"),
        (3 * 1024**4, "3072.0GB"),
    ],
)
def test_human_sizes(size: int, text: str) -> None:
    assert image_cmd._human(size) == text


def test_daemon_with_a_missing_config_file_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocirt.daemon import main as daemon_main

    deferred: list[bool] = []
    # The stand-ins are process-wide; this test process keeps its real modules.
    monkeypatch.setattr(daemon_main, "defer_unused_modules", lambda: deferred.append(True))
    missing = tmp_path / "config.json"
    assert main(["daemon", "--config", str(missing)]) == 1
    assert capsys.readouterr().err == f"Error: config file {missing} does not exist\n"
    assert deferred == [True]  # before anything else, as on a device


@pytest.mark.parametrize(
    "argv",
    [
        ["image", "--socket", "/s", "--json", "list"],
        ["image", "list", "--socket", "/s", "--json"],
        ["image", "--json", "list", "--socket", "/s"],
    ],
)
def test_connection_options_go_before_or_after_the_image_command(argv: list[str]) -> None:
    from ocirt.cli.main import command_parser

    args = command_parser(argv[0]).parse_args(argv[1:])
    assert (args.socket, args.json, args.image_command) == ("/s", True, "list")
