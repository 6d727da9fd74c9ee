"""The known-features file: what Kanto's persistence keeps, and that a damaged or
unwritable file never stops the front end."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.config.state import Status
from ocirt.manager.types import ContainerState, ContainerView, Event, EventKind
from ocirt.things import known
from ocirt.things.protocol import ThingId

THING = ThingId.for_device("ns:gw")


def test_saved_as_kantos_file_and_read_back(tmp_path: Path) -> None:
    home = tmp_path / "new" / "things"
    known.save(home, THING, {"b", "a"})
    path = home / "sup_back_ns_gw_edge_containers.json"
    assert json.loads(path.read_bytes()) == {"a": "Container:a", "b": "Container:b"}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert known.load(home, THING) == {"a", "b"}
    known.save(home, THING, set())
    assert known.load(home, THING) == set()


def test_no_file_is_nothing_known(tmp_path: Path) -> None:
    assert known.load(tmp_path, THING) == set()


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe", b"[1, 2]", b'"x"'])
def test_a_damaged_file_is_nothing_known(tmp_path: Path, content: bytes) -> None:
    known.backup_path(tmp_path, THING).write_bytes(content)
    assert known.load(tmp_path, THING) == set()


def test_an_unreadable_file_is_logged_and_nothing_known(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    known.backup_path(tmp_path, THING).mkdir()  # reading it fails with EISDIR
    with caplog.at_level(logging.WARNING, logger=known.__name__):
        assert known.load(tmp_path, THING) == set()
    assert "ignored an unreadable" in caplog.text


def test_a_failed_save_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "file"
    home.write_bytes(b"")  # the home dir cannot be made
    with caplog.at_level(logging.WARNING, logger=known.__name__):
        known.save(home, THING, {"a"})
    assert "cannot save the known features" in caplog.text


def _event(kind: EventKind, cid: str) -> Event:
    view = ContainerView(
        ContainerId(cid), cid, "img", ContainerConfig(), "", ContainerState(Status.CREATED)
    )
    return Event(kind, view)


def test_track_follows_created_and_removed_only() -> None:
    ids = {"a"}
    assert known.track(ids, _event(EventKind.CREATED, "b"))
    assert ids == {"a", "b"}
    assert known.track(ids, _event(EventKind.REMOVED, "a"))
    assert ids == {"b"}
    assert known.track(ids, _event(EventKind.REMOVED, "absent"))
    for kind in (EventKind.STATE, EventKind.RENAMED, EventKind.UPDATED):
        assert not known.track(ids, _event(kind, "c"))
    assert ids == {"b"}
