"""Deployment descriptors: the scan, the pure plan, and the plan carried out on the
in-memory manager (rollback included)."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from ocirt.config.model import ContainerConfig, RestartPolicy, RestartPolicyType
from ocirt.config.state import Status
from ocirt.daemon.config import DeploymentMode, DeploymentSettings
from ocirt.daemon.deployment import (
    MARKER,
    Deployment,
    Descriptor,
    Kind,
    deploy,
    descriptor_request,
    plan,
    read_descriptor,
    scan,
)
from ocirt.errors import InvalidArgument, RuncError
from ocirt.health.gate import ActivationGate
from ocirt.manager.types import ContainerState, ContainerView
from tests.support.fake_manager import FakeManager

UPDATE, INIT = DeploymentMode.UPDATE, DeploymentMode.INIT


def write(directory: Path, name: str, doc: object) -> None:
    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(doc))


def doc(name: str, image: str = "img:1", **config: object) -> dict[str, object]:
    return {"container_name": name, "image": {"name": image}, "config": config}


def view_of(name: str, descriptor: Descriptor, status: Status = Status.RUNNING) -> ContainerView:
    config = replace(descriptor.config, host_name=f"{name}-host", domain_name=f"{name}-domain")
    return ContainerView(
        id=f"id-{name}", name=name, image_ref=descriptor.image_ref, config=config,
        created_at="2024-05-01T10:00:00Z", state=ContainerState(status=status),
    )  # fmt: skip


# ---- descriptors and the scan ------------------------------------------------------------


def test_descriptor_without_name_gets_manager_defaults() -> None:
    image, config, name = descriptor_request(json.dumps({"image": {"name": "img"}}))
    assert (image, name, config.host_name, config.domain_name) == ("img", None, "", "")


def test_a_descriptors_container_id_is_read() -> None:
    read = read_descriptor(json.dumps({"container_id": "app-1", "image": {"name": "img"}}))
    # Kanto's defaults: the name is the id.
    assert (read.container_id, read.name) == ("app-1", "app-1")


def test_scan_is_recursive_and_skips_what_it_cannot_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "b.json", doc("b"))
    write(tmp_path, "sub/deeper/a.json", doc("a"))
    write(tmp_path, "broken.json", {"container_name": "x"})
    (tmp_path / "note.txt").write_text("not json")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "secret.json").write_text(json.dumps(doc("s")))
    os.chmod(tmp_path / "secret.json", 0)
    with caplog.at_level(logging.ERROR):
        found = scan(tmp_path)
    names = [d.name for d in found]
    if os.geteuid() == 0:  # root reads a mode-0 file
        names.remove("s")
    else:
        assert "secret.json: cannot read it" in caplog.text
    assert names == ["b", "a"]
    assert [d.source for d in found if d.name != "s"] == ["b.json", "sub/deeper/a.json"]
    assert "broken.json: the containers image configuration is invalid" in caplog.text


def test_scan_of_a_missing_directory_is_empty_and_of_a_file_an_error(tmp_path: Path) -> None:
    assert scan(tmp_path / "absent") == []
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidArgument) as info:
        scan(tmp_path / "file")
    assert info.value.message == f"the deployment directory {tmp_path / 'file'} is not a directory"


# ---- the plan --------------------------------------------------------------------------------


def descriptor(name: str | None, image: str = "img:1", **config: object) -> Descriptor:
    body = doc(name, image, **config) if name else {"image": {"name": image}, "config": config}
    return read_descriptor(json.dumps(body), f"{name}.json")


def test_init_mode_deploys_only_without_marker_and_containers() -> None:
    wanted = [descriptor("a"), descriptor("b")]
    assert [a.kind for a in plan(INIT, wanted, [], False)] == [Kind.CREATE, Kind.CREATE]
    assert plan(INIT, wanted, [], True) == []
    assert plan(INIT, wanted, [view_of("other", descriptor("other"))], False) == []


def test_update_mode_decides_per_name() -> None:
    same = descriptor("same")
    stopped = descriptor("stopped")
    current = [
        view_of("same", same),
        view_of("stopped", stopped, Status.STOPPED),
        view_of("policy", descriptor("policy")),
        view_of("env", descriptor("env", env=["V=1"])),
        view_of("image", descriptor("image")),
        view_of("untouched", descriptor("untouched")),
    ]
    policy = replace(
        descriptor("policy").config, restart_policy=RestartPolicy(RestartPolicyType.ALWAYS)
    )
    wanted = [
        descriptor("new"),
        same,
        stopped,
        replace(descriptor("policy"), config=policy),
        descriptor("env", env=["V=2"]),
        descriptor("image", "img:2"),
    ]
    actions = plan(UPDATE, wanted, current, True)
    assert [(a.descriptor.name, a.kind) for a in actions] == [
        ("new", Kind.CREATE),
        ("same", Kind.CHECK),
        ("stopped", Kind.CHECK),
        ("policy", Kind.UPDATE),
        ("env", Kind.RECREATE),
        ("image", Kind.RECREATE),
    ]
    assert [a.current.id if a.current else None for a in actions][1:3] == ["id-same", "id-stopped"]


def test_update_mode_skips_unnamed_and_repeated_names(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        actions = plan(
            UPDATE, [descriptor(None), descriptor("a"), descriptor("a", "i:2")], [], True
        )
    assert [(a.descriptor.name, a.descriptor.image_ref) for a in actions] == [("a", "img:1")]
    assert "neither container_name nor container_id" in caplog.text
    assert "container a is already declared by a.json" in caplog.text


# ---- carried out on the in-memory manager ---------------------------------------------


def settings(directory: Path, mode: DeploymentMode = UPDATE) -> DeploymentSettings:
    return DeploymentSettings(mode=mode, ctr_dir=str(directory))


def test_init_mode_runs_once_and_makes_kantos_marker(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a"))
    assert len(deploy(manager, settings(ctrs, INIT), tmp_path)) == 1
    assert (tmp_path / MARKER).is_dir()
    manager.remove(manager.list()[0].id, True)
    assert deploy(manager, settings(ctrs, INIT), tmp_path) == []
    assert manager.list() == []


def test_init_mode_with_containers_deploys_nothing_but_marks(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a"))
    manager.create("img:1", ContainerConfig(), "mine")
    assert deploy(manager, settings(ctrs, INIT), tmp_path) == []
    assert [v.name for v in manager.list()] == ["mine"]
    assert (tmp_path / MARKER).is_dir()


def test_update_mode_creates_with_the_descriptors_id_and_starts(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", {**doc("a"), "container_id": "app-a"})
    assert deploy(manager, settings(ctrs), tmp_path) == ["app-a"]
    assert manager.get("app-a").state.status is Status.RUNNING
    # Unchanged: nothing is created again.
    assert deploy(manager, settings(ctrs), tmp_path) == []
    assert [v.id for v in manager.list()] == ["app-a"]


def test_an_unchanged_container_is_started_or_resumed(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a"))
    write(ctrs, "b.json", doc("b"))
    a, b = deploy(manager, settings(ctrs), tmp_path)
    manager.stop(a, None)  # type: ignore[arg-type]
    manager.pause(b)
    manager.calls.clear()
    assert deploy(manager, settings(ctrs), tmp_path) == []
    assert [c[:2] for c in manager.calls if c[0] != "create"] == [("start", a), ("resume", b)]
    assert {manager.get(a).state.status, manager.get(b).state.status} == {Status.RUNNING}


def test_a_restart_policy_change_is_applied_in_place(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a"))
    (cid,) = deploy(manager, settings(ctrs), tmp_path)
    changed = {**doc("a"), "host_config": {"restart_policy": {"type": "always"}}}
    write(ctrs, "a.json", changed)
    assert deploy(manager, settings(ctrs), tmp_path) == []
    (view,) = manager.list()
    assert view.id == cid and view.config.restart_policy.type is RestartPolicyType.ALWAYS
    assert view.state.status is Status.RUNNING


def test_any_other_change_replaces_new_first_then_removes_the_old(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a", env=["V=1"]))
    (old,) = deploy(manager, settings(ctrs), tmp_path)
    write(ctrs, "a.json", doc("a", env=["V=2"]))
    manager.calls.clear()
    (new,) = deploy(manager, settings(ctrs), tmp_path)
    (view,) = manager.list()
    assert (view.id, view.name, view.config.env) == (new, "a", ("V=2",))
    assert view.state.status is Status.RUNNING
    steps = [(c[0], c[1] if c[0] != "create" else c[3]) for c in manager.calls]
    assert steps == [
        ("create", "a.new"),
        ("stop", old),
        ("rename", old),
        ("rename", new),
        ("start", new),
        ("remove", old),
    ]


def test_a_failed_start_rolls_back_to_the_old_container(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a", env=["V=1"]))
    (old,) = deploy(manager, settings(ctrs), tmp_path)
    write(ctrs, "a.json", doc("a", env=["V=2"]))
    real_start = manager.start

    def start(cid: str) -> None:
        manager.fail_start = None if cid == old else RuncError("exec: no such file")
        real_start(cid)  # type: ignore[arg-type]

    manager.start = start  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        assert deploy(manager, settings(ctrs), tmp_path) == []
    (view,) = manager.list()
    assert (view.id, view.name, view.config.env) == (old, "a", ("V=1",))
    assert view.state.status is Status.RUNNING
    assert "exec: no such file; rolled back: removed" in caplog.text
    assert f"a ({old}) runs again" in caplog.text


def test_a_failed_gate_rolls_back_to_the_old_container(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a"))
    (old,) = deploy(manager, settings(ctrs), tmp_path)
    write(ctrs, "a.json", doc("a", "sick:1"))

    class Health:
        def verdict(
            self, container_id: str, started_at: str | None = None, /
        ) -> tuple[str, float] | None:
            sick = manager.get(container_id).image_ref == "sick:1"  # type: ignore[arg-type]
            return ("unhealthy", 0.0) if sick else None

    gate = ActivationGate(manager, Health(), monitor=0, timeout=0)
    assert Deployment(manager, settings(ctrs), tmp_path, gate).run() == []
    (view,) = manager.list()
    assert (view.id, view.name, view.image_ref) == (old, "a", "img:1")
    assert view.state.status is Status.RUNNING


def test_a_broken_directory_deploys_nothing(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    manager = FakeManager()
    assert deploy(manager, settings(tmp_path / "file"), tmp_path) == []
    assert manager.calls == []


def test_start_runs_in_a_thread_and_signals_the_end(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a"))
    deployment = Deployment(manager, settings(ctrs), tmp_path)
    deployment.start()
    assert deployment.done.wait(30)
    deployment.close()
    assert [v.name for v in manager.list()] == ["a"]


def test_a_stop_during_the_gate_rolls_the_recreate_back(tmp_path: Path) -> None:
    ctrs, manager = tmp_path / "ctrs", FakeManager()
    write(ctrs, "a.json", doc("a"))
    (old,) = deploy(manager, settings(ctrs), tmp_path)
    write(ctrs, "a.json", doc("a", "slow:1"))
    checking = threading.Event()

    class NeverDecides:
        def verdict(
            self, container_id: str, started_at: str | None = None, /
        ) -> tuple[str, float] | None:
            checking.set()
            return "starting", 0.0

    gate = ActivationGate(manager, NeverDecides(), monitor=0, timeout=600)
    deployment = Deployment(manager, settings(ctrs), tmp_path, gate)
    deployment.start()
    assert checking.wait(30)
    deployment.close()
    assert deployment.done.is_set()
    (view,) = manager.list()
    assert (view.id, view.name, view.image_ref) == (old, "a", "img:1")
    assert view.state.status is Status.RUNNING
