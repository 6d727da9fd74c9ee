"""The daemon's size-rotated log file, against what logging.handlers.RotatingFileHandler
does with the same limits."""

from __future__ import annotations

import logging
import logging.handlers
import subprocess
import sys
from pathlib import Path

import pytest

from ocirt.daemon.logfile import RotatingLogFile


def write(handler: logging.Handler, lines: list[str]) -> None:
    logger = logging.Logger("ocirt.logfile-test")
    logger.addHandler(handler)
    for line in lines:
        logger.warning(line)
    handler.close()


def files(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize(("max_bytes", "backups"), [(64, 2), (100, 1), (10, 3), (0, 2)])
def test_rotates_as_the_standard_handler_does(tmp_path: Path, max_bytes: int, backups: int) -> None:
    lines = [f"line {i} " + "x" * (i % 7) for i in range(40)]
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    write(RotatingLogFile(str(ours / "cm.log"), max_bytes, backups), lines)
    standard = logging.handlers.RotatingFileHandler(
        str(theirs / "cm.log"), maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    write(standard, lines)
    assert files(ours) == files(theirs)
    if max_bytes:
        assert len(files(ours)) == backups + 1


def test_a_file_removed_from_under_it_is_made_again_at_the_next_rotation(
    tmp_path: Path,
) -> None:
    target = tmp_path / "cm.log"
    handler = RotatingLogFile(str(target), 30, 2)
    logger = logging.Logger("ocirt.logfile-test")
    logger.addHandler(handler)
    logger.warning("first line of text")
    target.unlink()  # a tidy-up by hand
    logger.warning("second line of text")
    logger.warning("third line of text")
    handler.close()
    assert target.read_text() == "third line of text\n"


def test_the_daemons_logging_does_not_import_logging_handlers(tmp_path: Path) -> None:
    code = f"""
import sys
from ocirt.daemon.config import LogLevel, LogSettings
from ocirt.daemon.main import setup_logging
setup_logging(LogSettings(file={str(tmp_path / "cm.log")!r}, level=LogLevel.INFO))
print("logging.handlers" in sys.modules, "pickle" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
