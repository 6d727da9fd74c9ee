"""Reading json-file logs: all, tail, since, and follow across rotations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ocirt.errors import NotFound
from ocirt.logs.jsonline import LogStream, encode_line
from ocirt.logs.reader import read_logs, rotated_files

BASE = 1_700_000_000_000_000_000


def line(n: int, text: str | None = None, stream: LogStream = LogStream.STDOUT) -> bytes:
    data = (text if text is not None else f"line {n}\n").encode()
    return encode_line(stream, data, BASE + n * 1_000_000_000)


def write_files(log: Path, files: dict[str, list[bytes]]) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (log.parent / name).write_bytes(b"".join(lines))


def texts(entries: Iterator[object]) -> list[str]:
    return [e.text for e in entries]  # type: ignore[attr-defined]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "ctr" / "json.log"
    write_files(
        path,
        {
            "json.log.2": [line(1), line(2)],
            "json.log.1": [line(3), line(4, "long-"), line(4, "line\n")],
            "json.log": [line(5), line(6)],
        },
    )
    return path


def test_reads_rotated_files_oldest_first_and_joins_chunks(log: Path) -> None:
    assert [p.name for p in rotated_files(log)] == ["json.log.2", "json.log.1"]
    assert texts(read_logs(log)) == [
        "line 1\n",
        "line 2\n",
        "line 3\n",
        "long-line\n",
        "line 5\n",
        "line 6\n",
    ]


def test_unknown_container_is_not_found_and_empty_dir_is_empty(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        list(read_logs(tmp_path / "gone" / "json.log"))
    (tmp_path / "empty").mkdir()
    assert list(read_logs(tmp_path / "empty" / "json.log")) == []


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (0, []),
        (1, ["line 6\n"]),
        (3, ["long-line\n", "line 5\n", "line 6\n"]),
        (4, ["line 3\n", "long-line\n", "line 5\n", "line 6\n"]),
        (100, ["line 1\n", "line 2\n", "line 3\n", "long-line\n", "line 5\n", "line 6\n"]),
    ],
)
def test_tail_counts_joined_entries_across_files(log: Path, tail: int, expected: list[str]) -> None:
    assert texts(read_logs(log, tail=tail)) == expected


def test_tail_scans_backwards_over_blocks(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    path.write_bytes(b"".join(line(n) for n in range(20000)))
    assert texts(read_logs(path, tail=2)) == ["line 19998\n", "line 19999\n"]


def test_since_drops_until_the_first_entry_at_or_after_it(log: Path) -> None:
    since = datetime.fromtimestamp(BASE // 10**9 + 4, UTC)
    assert texts(read_logs(log, since=since)) == ["long-line\n", "line 5\n", "line 6\n"]
    assert texts(read_logs(log, since=since, tail=1)) == ["line 6\n"]


def test_unfinished_and_garbage_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    path.write_bytes(line(1) + b"garbage\n" + line(2) + line(3)[:20])
    assert texts(read_logs(path)) == ["line 1\n", "line 2\n"]
    assert texts(read_logs(path, tail=5)) == ["line 1\n", "line 2\n"]


class Script:
    """A stop() callback that performs one file operation per poll, then stops."""

    def __init__(self, steps: list[Callable[[], None]]) -> None:
        self.steps = steps
        self.polls = 0

    def __call__(self) -> bool:
        self.polls += 1
        if self.steps:
            self.steps.pop(0)()
            return False
        return True


def append(path: Path, *lines: bytes) -> Callable[[], None]:
    def run() -> None:
        with path.open("ab") as f:
            f.write(b"".join(lines))

    return run


def rotate(path: Path, max_files: int) -> Callable[[], None]:
    """The monitor's rotation: shift by rename, then a fresh json.log."""

    def run() -> None:
        for i in range(max_files - 1, 1, -1):
            src = path.with_name(f"{path.name}.{i - 1}")
            if src.exists():
                src.rename(path.with_name(f"{path.name}.{i}"))
        path.rename(path.with_name(f"{path.name}.1"))
        path.write_bytes(b"")

    return run


def both(*steps: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        for step in steps:
            step()

    return run


def test_follow_yields_new_lines_across_rotations(log: Path) -> None:
    half = line(9)[:15]
    script = Script(
        [
            append(log, line(7)),
            append(log, half),  # an entry in the middle of being written
            append(log, line(9)[15:], line(10, "part-")),
            rotate(log, 3),
            append(log, line(10, "ial\n"), line(11)),
            # Two rotations between polls: the file in between must not be missed.
            both(rotate(log, 3), append(log, line(12)), rotate(log, 3)),
            append(log, line(13)),
        ]
    )
    got = texts(read_logs(log, tail=1, follow=True, stop=script, poll_interval=0))
    assert got == [
        "line 6\n",
        "line 7\n",
        "line 9\n",
        "part-ial\n",
        "line 11\n",
        "line 12\n",
        "line 13\n",
    ]


def test_follow_after_the_file_was_rotated_out_entirely(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    path.write_bytes(line(1))
    script = Script(
        [
            append(path, line(2)),
            # max-files 2, two rotations in one poll: the file being followed is deleted
            # (its open fd still reads), and the one rotated after it must be read too.
            both(append(path, line(3)), rotate(path, 2), append(path, line(4)), rotate(path, 2)),
            append(path, line(5)),
        ]
    )
    got = texts(read_logs(path, follow=True, stop=script, poll_interval=0))
    assert got == ["line 1\n", "line 2\n", "line 3\n", "line 4\n", "line 5\n"]


def test_follow_waits_for_a_log_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "json.log"
    script = Script([lambda: None, append(path, line(1), line(2, "x", LogStream.STDERR))])
    got = list(read_logs(path, follow=True, stop=script, poll_interval=0))
    assert [(e.stream, e.text) for e in got] == [
        (LogStream.STDOUT, "line 1\n"),
        (LogStream.STDERR, "x"),
    ]
