"""bench/benchlib.py: the parts every bench relies on for honest figures."""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "bench"))

import benchlib  # noqa: E402


def test_interleave_runs_every_contender_once_per_round_and_drops_the_warm_up() -> None:
    calls: list[str] = []
    clock = iter(range(100))

    def contender(name: str):  # type: ignore[no-untyped-def]
        def measure() -> float:
            calls.append(name)
            return float(next(clock))

        return measure

    got = benchlib.interleave(3, {"a": contender("a"), "b": contender("b")})
    assert calls == ["a", "b"] * 4
    # Round 0 (values 0 and 1) is the warm-up.
    assert got == {"a": [2.0, 4.0, 6.0], "b": [3.0, 5.0, 7.0]}


@pytest.fixture
def cwd() -> Iterator[None]:
    before = Path.cwd()
    try:
        yield
    finally:
        os.chdir(before)


def test_describe_leaves_the_source_tree_and_names_the_install(cwd: None) -> None:
    os.chdir(REPO / "bench")
    line = benchlib.describe()
    assert Path.cwd() == Path("/")
    where, kind = benchlib.ocirt_install()
    assert kind in {"installed", "editable", "source tree"}
    assert line.startswith(f"measured: {sys.executable} ")
    assert f"ocirt {kind} at {where}" in line


def test_describe_stays_where_it_was_started_outside_the_tree(cwd: None, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    benchlib.describe()
    assert Path.cwd() == tmp_path


def test_private_containerd_keeps_every_path_under_its_base(tmp_path: Path) -> None:
    instance = benchlib.Containerd(tmp_path / "ctd")
    config = tomllib.loads(instance.config.read_text())
    base = str(tmp_path / "ctd")
    paths = [
        config["root"],
        config["state"],
        config["grpc"]["address"],
        config["plugins"]["io.containerd.internal.v1.opt"]["path"],
    ]
    assert all(p.startswith(base + "/") for p in paths), paths
    assert config["ttrpc"]["address"] == config["debug"]["address"] == ""
    assert config["metrics"]["address"] == ""
    assert "io.containerd.grpc.v1.cri" in config["disabled_plugins"]
    assert instance.ctr_argv("c", "ls")[:5] == [
        "ctr", "--address", config["grpc"]["address"], "--namespace", instance.namespace,
    ]  # fmt: skip
