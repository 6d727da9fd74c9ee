"""Deployment descriptors applied to the in-memory manager."""

from __future__ import annotations

import json
from pathlib import Path

from ocirt.config.state import Status
from ocirt.daemon.config import DeploymentMode, DeploymentSettings
from ocirt.daemon.deployment import INIT_MARKER, deploy, descriptor_request
from tests.support.fake_manager import FakeManager


def write(directory: Path, name: str, doc: object) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(json.dumps(doc))


def test_descriptor_without_name_gets_manager_defaults() -> None:
    image, config, name = descriptor_request(json.dumps({"image": {"name": "img"}}))
    assert (image, name, config.host_name, config.domain_name) == ("img", None, "", "")


def test_update_mode_creates_then_replaces_changed(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    settings = DeploymentSettings(ctr_dir=str(ctrs))
    write(ctrs, "a.json", {"container_name": "a", "image": {"name": "img:1"}})
    write(ctrs, "broken.json", {"container_name": "b"})
    (ctrs / "note.txt").write_text("not json")
    first = deploy(manager, settings, tmp_path)
    assert len(first) == 1
    assert manager.views[first[0]].state.status is Status.RUNNING
    assert deploy(manager, settings, tmp_path) == []
    write(ctrs, "a.json", {"container_name": "a", "image": {"name": "img:2"}})
    second = deploy(manager, settings, tmp_path)
    assert [v.image_ref for v in manager.list()] == ["img:2"]
    assert second != first


def test_init_mode_runs_once(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    settings = DeploymentSettings(mode=DeploymentMode.INIT, ctr_dir=str(ctrs))
    write(ctrs, "a.json", {"container_name": "a", "image": {"name": "img"}})
    assert len(deploy(manager, settings, tmp_path)) == 1
    assert (tmp_path / INIT_MARKER).exists()
    manager.remove(manager.list()[0].id, True)
    assert deploy(manager, settings, tmp_path) == []
    assert manager.list() == []
