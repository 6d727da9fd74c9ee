"""`ocirt stats`: docker's columns and units."""

from __future__ import annotations

from ocirt.cli import stats_cmd
from ocirt.cli.main import command_parser


def test_row_formats_like_docker_stats() -> None:
    row = stats_cmd.row(
        {
            "id": "0123456789abcdef",
            "name": "web",
            "cpuPercent": 12.3456,
            "memoryUsage": 1536 * 1024,
            "memoryLimit": 64 * 1024 * 1024,
            "memoryPercent": 2.34375,
            "netInput": 1500,
            "netOutput": 648,
            "blockRead": 0,
            "blockWrite": 8_388_608,
            "pids": 3,
        }
    )
    assert row == ["0123456789ab", "web", "12.35%", "1.5MiB / 64MiB", "2.34%",
                   "1.5kB / 648B", "0B / 8.39MB", "3"]  # fmt: skip


def test_a_container_without_figures_shows_dashes() -> None:
    empty = {"id": "c", "name": "n", "cpuPercent": None, "memoryUsage": None,
             "memoryLimit": None, "memoryPercent": None, "netInput": None, "netOutput": None,
             "blockRead": None, "blockWrite": None, "pids": None}  # fmt: skip
    assert stats_cmd.row(empty) == ["c", "n", "--", "--", "--", "--", "--", "--"]


def test_arguments() -> None:
    args = command_parser("stats").parse_args(["--no-stream", "--json", "a", "b"])
    assert (args.no_stream, args.json, args.containers) == (True, True, ["a", "b"])
    assert command_parser("stats").parse_args([]).containers == []
