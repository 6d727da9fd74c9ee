"""The runner against an in-memory manager and artifact source: chains, failures,
rollback, replacement of a same-named container, and resumption after a restart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ocirt.config.model import ContainerConfig, ContainerId
from ocirt.config.state import Status
from ocirt.errors import RuncError, Unavailable
from ocirt.health.gate import ActivationGate
from ocirt.swupdate.journal import Journal
from ocirt.swupdate.plan import Report
from ocirt.swupdate.runner import RESTART_MESSAGE, Runner
from tests.support.fake_manager import FakeManager

IMAGE = "localhost/busybox:itest"


def descriptor(name: str, image: str = IMAGE) -> bytes:
    return json.dumps({"container_name": name, "image": {"name": image}}).encode()


class Source:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.fetched: list[tuple[str, Path, int]] = []

    def fetch(self, url: str, partial: Path, size: int, /) -> bytes:
        self.fetched.append((url, partial, size))
        if url not in self.files:
            raise Unavailable(f"download of {url} failed: HTTP 404 Not Found")
        return self.files[url]


class Recorder:
    def __init__(self) -> None:
        self.events: list[object] = []

    def report(self, report: Report, /) -> None:
        self.events.append((report.failed, report.status.to_value()))

    def installed(self, container_id: str, image_ref: str, /) -> None:
        self.events.append(("installed", container_id))

    def uninstalled(self, container_id: str, /) -> None:
        self.events.append(("uninstalled", container_id))

    def statuses(self) -> list[str]:
        return [e[1]["status"] for e in self.events if isinstance(e[1], dict)]  # type: ignore[index]

    def last(self) -> dict[str, object]:
        return [e for e in self.events if isinstance(e[1], dict)][-1][1]  # type: ignore[return-value]


def artifact(url: str, body: bytes, **sums: str) -> dict[str, object]:
    return {
        "filename": url.rsplit("/", 1)[1],
        "download": {"HTTP": {"url": url}},
        "checksums": sums or {"SHA256": hashlib.sha256(body).hexdigest()},
        "size": len(body),
    }


def install_value(*artifacts: dict[str, object], name: str = "mod") -> dict[str, object]:
    return {
        "correlationId": "corr",
        "softwareModules": [
            {"softwareModule": {"name": name, "version": "1"}, "artifacts": list(artifacts)}
        ],
    }


def run(tmp_path: Path, manager: FakeManager, source: Source, *ops: tuple[str, object]) -> Recorder:
    recorder = Recorder()
    runner = Runner(manager, source, Journal(tmp_path / "journal"), recorder, stop_timeout=1)
    runner.start()
    for kind, value in ops:
        runner.submit(kind, value)
    runner.close()
    return recorder


def test_install_reports_kantos_chain_and_runs_the_container(tmp_path: Path) -> None:
    manager = FakeManager()
    body = descriptor("web")
    source = Source({"http://h/a.json": body})
    recorder = run(
        tmp_path, manager, source, ("install", install_value(artifact("http://h/a.json", body)))
    )
    (view,) = manager.list()
    assert view.name == "web" and view.image_ref == IMAGE
    assert view.state.status is Status.RUNNING
    assert recorder.statuses() == [
        "STARTED", "DOWNLOADING", "DOWNLOADED", "INSTALLING", "INSTALLED", "FINISHED_SUCCESS"
    ]  # fmt: skip
    # The dependency map is brought up to date before INSTALLED is reported.
    installed_at = recorder.events.index(("installed", view.id))
    assert recorder.events[installed_at + 1][1]["status"] == "INSTALLED"  # type: ignore[index]
    assert recorder.last() == {
        "correlationId": "corr", "status": "FINISHED_SUCCESS",
        "softwareModule": {"name": "mod", "version": "1"},
    }  # fmt: skip
    assert not list((tmp_path / "journal").iterdir())


def test_checksum_mismatch_is_rejected_before_anything_is_created(tmp_path: Path) -> None:
    manager = FakeManager()
    body = descriptor("web")
    source = Source({"http://h/a.json": body})
    value = install_value(artifact("http://h/a.json", body, MD5="00" * 16))
    recorder = run(tmp_path, manager, source, ("install", value))
    assert manager.list() == []
    assert recorder.statuses() == [
        "STARTED",
        "DOWNLOADING",
        "FINISHED_REJECTED",
    ]
    assert recorder.events[-1][0] is True  # also sent as lastFailedOperation
    assert recorder.last()["message"] == "md5 checksum does not match"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", "FINISHED_ERROR", "invalid JSON"),
        (b"[1]", "FINISHED_ERROR", "is not a JSON object"),
        (descriptor("in valid"), "FINISHED_REJECTED", "invalid container name format : in valid"),
        (
            b'{"container_name": "x"}',
            "FINISHED_REJECTED",
            "the containers image configuration is invalid",
        ),
    ],
)
def test_bad_descriptors(tmp_path: Path, body: bytes, status: str, message: str) -> None:
    manager = FakeManager()
    source = Source({"http://h/a.json": body})
    recorder = run(
        tmp_path, manager, source, ("install", install_value(artifact("http://h/a.json", body)))
    )
    assert manager.list() == []
    assert recorder.statuses()[-1] == status
    assert message in str(recorder.last()["message"])


def test_download_error_is_finished_error(tmp_path: Path) -> None:
    body = descriptor("web")
    recorder = run(
        tmp_path,
        FakeManager(),
        Source({}),
        ("install", install_value(artifact("http://h/gone", body))),
    )
    assert recorder.statuses()[-1] == "FINISHED_ERROR"
    assert recorder.last()["message"] == "download of http://h/gone failed: HTTP 404 Not Found"


def test_a_start_failure_rolls_the_whole_module_back(tmp_path: Path) -> None:
    manager = FakeManager()
    manager.fail_start = RuncError("runc start failed")
    one, two = descriptor("one"), descriptor("two")
    source = Source({"http://h/1": one, "http://h/2": two})
    value = install_value(artifact("http://h/1", one), artifact("http://h/2", two))
    recorder = run(tmp_path, manager, source, ("install", value))
    assert manager.list() == []
    created = [c[1] for c in manager.calls if c[0] == "remove"]
    assert len(created) == 2
    message = str(recorder.last()["message"])
    assert message.startswith(
        "runc start failed; the install was rolled back: removed the new container(s) "
    )
    assert recorder.statuses()[-3:] == ["INSTALLING", "INSTALLED", "FINISHED_ERROR"]


def test_a_same_named_container_is_replaced(tmp_path: Path) -> None:
    manager = FakeManager()
    old = manager.create("localhost/old:1", ContainerConfig(), "web")
    manager.start(old.id)
    body = descriptor("web")
    recorder = run(
        tmp_path,
        manager,
        Source({"http://h/a": body}),
        ("install", install_value(artifact("http://h/a", body))),
    )
    (view,) = manager.list()
    assert view.id != old.id and view.name == "web" and view.image_ref == IMAGE
    assert view.state.status is Status.RUNNING
    assert ("stop", old.id) == manager.calls[[c[0] for c in manager.calls].index("stop")][:2]
    assert recorder.statuses()[-1] == "FINISHED_SUCCESS"


def test_a_failed_replacement_restores_the_old_container(tmp_path: Path) -> None:
    manager = FakeManager()
    old = manager.create("localhost/old:1", ContainerConfig(), "web")
    manager.start(old.id)
    manager.fail_start = RuncError("runc start failed")
    body = descriptor("web")

    def start_old_only(cid: str, real=manager.start) -> None:  # type: ignore[no-untyped-def]
        manager.fail_start = None if cid == old.id else RuncError("runc start failed")
        real(cid)

    manager.start = start_old_only  # type: ignore[method-assign]
    recorder = run(
        tmp_path,
        manager,
        Source({"http://h/a": body}),
        ("install", install_value(artifact("http://h/a", body))),
    )
    (view,) = manager.list()
    assert view.id == old.id and view.name == "web"
    assert view.state.status is Status.RUNNING
    message = str(recorder.last()["message"])
    assert f"restored web ({old.id})" in message
    assert recorder.statuses()[-1] == "FINISHED_ERROR"


def test_an_install_interrupted_while_installing_is_rolled_back_at_the_next_start(
    tmp_path: Path,
) -> None:
    manager = FakeManager()
    half = manager.create(IMAGE, ContainerConfig(), "web")
    journal = Journal(tmp_path / "journal")
    body = descriptor("web")
    entry = journal.add("install", install_value(artifact("http://h/a", body)))
    journal.update(entry, module=0, phase="installing", created=[half.id], displaced=[])
    recorder = run(tmp_path, manager, Source({"http://h/a": body}))
    assert manager.list() == []
    assert recorder.statuses() == ["FINISHED_ERROR"]
    assert str(recorder.last()["message"]).startswith(
        RESTART_MESSAGE + "; the install was rolled back"
    )
    assert not list((tmp_path / "journal").iterdir())


def test_an_install_interrupted_while_downloading_goes_on(tmp_path: Path) -> None:
    manager = FakeManager()
    journal = Journal(tmp_path / "journal")
    body = descriptor("web")
    entry = journal.add("install", install_value(artifact("http://h/a", body)))
    journal.update(entry, module=0, phase="downloading", created=[], displaced=[])
    source = Source({"http://h/a": body})
    recorder = run(tmp_path, manager, source)
    assert recorder.statuses()[-1] == "FINISHED_SUCCESS"
    # The same partial file as the interrupted run: the download resumes from it.
    assert source.fetched[0][1] == journal.partial(entry, 0, 0)
    assert len(manager.list()) == 1


def test_remove_not_forced_stops_at_the_first_error(tmp_path: Path) -> None:
    manager = FakeManager()
    a = manager.create(IMAGE, ContainerConfig(), "a")
    c = manager.create(IMAGE, ContainerConfig(), "c")
    value = {"correlationId": "r", "software": [{"name": a.id}, {"name": "nope"}, {"name": c.id}]}
    recorder = run(tmp_path, manager, Source({}), ("remove", value))
    assert [v.id for v in manager.list()] == [c.id]
    assert recorder.statuses() == [
        "REMOVING", "REMOVED", "REMOVING", "FINISHED_REJECTED",
        "FINISHED_ERROR", "FINISHED_SUCCESS",
    ]  # fmt: skip
    errors = [
        e[1]
        for e in recorder.events
        if isinstance(e[1], dict) and e[1]["status"] == "FINISHED_ERROR"
    ]
    assert errors[0]["message"] == "container with ID = nope does not exist"


def test_remove_forced_tries_every_item(tmp_path: Path) -> None:
    manager = FakeManager()
    c = manager.create(IMAGE, ContainerConfig(), "c")
    manager.start(c.id)
    value = {
        "correlationId": "r",
        "forced": True,
        "software": [{"name": "x"}, {"name": "y"}, {"name": c.id}],
    }
    recorder = run(tmp_path, manager, Source({}), ("remove", value))
    assert manager.list() == []
    assert recorder.statuses()[-3:] == ["REMOVED", "FINISHED_ERROR", "FINISHED_SUCCESS"]
    error = [
        e[1]
        for e in recorder.events
        if isinstance(e[1], dict) and e[1]["status"] == "FINISHED_ERROR"
    ][-1]
    assert error["message"] == (
        "2 errors:\n\n* container with ID = x does not exist"
        "\n* container with ID = y does not exist"
    )


def test_a_resumed_install_skips_modules_already_reported(tmp_path: Path) -> None:
    manager = FakeManager()
    journal = Journal(tmp_path / "journal")
    one, two = descriptor("one"), descriptor("two")
    value = install_value(artifact("http://h/1", one))
    value["softwareModules"].append(  # type: ignore[attr-defined]
        {
            "softwareModule": {"name": "second", "version": "1"},
            "artifacts": [artifact("http://h/2", two)],
        }
    )
    entry = journal.add("install", value)
    journal.update(entry, module=0, phase="done", created=[], displaced=[])
    source = Source({"http://h/1": one, "http://h/2": two})
    recorder = run(tmp_path, manager, source)
    assert [url for url, _, _ in source.fetched] == ["http://h/2"]
    assert [v.name for v in manager.list()] == ["two"]
    assert recorder.statuses()[-1] == "FINISHED_SUCCESS"


def test_an_install_interrupted_after_its_starts_is_finished(tmp_path: Path) -> None:
    manager = FakeManager()
    old = manager.create(IMAGE, ContainerConfig(), "web.replaced-1")
    new = manager.create(IMAGE, ContainerConfig(), "web")
    manager.start(new.id)
    journal = Journal(tmp_path / "journal")
    body = descriptor("web")
    entry = journal.add("install", install_value(artifact("http://h/a", body)))
    displaced = [{"id": old.id, "name": "web", "aside": "web.replaced-1", "running": False}]
    journal.update(entry, module=0, phase="started", created=[new.id], displaced=displaced)
    recorder = run(tmp_path, manager, Source({}))
    assert [v.id for v in manager.list()] == [new.id]
    assert recorder.statuses() == ["FINISHED_SUCCESS"]


def test_a_resumed_remove_goes_on_with_the_items_left(tmp_path: Path) -> None:
    manager = FakeManager()
    last = manager.create(IMAGE, ContainerConfig(), "last")
    journal = Journal(tmp_path / "journal")
    value = {
        "correlationId": "r",
        "software": [{"name": "done"}, {"name": "cut"}, {"name": last.id}],
    }
    entry = journal.add("remove", value)
    # The last run removed "done", and was killed while removing "cut".
    journal.update(entry, current=1, results=[None])
    recorder = run(tmp_path, manager, Source({}))
    assert manager.list() == []
    assert recorder.statuses() == ["REMOVING", "REMOVED", "REMOVING", "REMOVED", "FINISHED_SUCCESS"]
    assert recorder.last()["software"] == [
        {"name": "done", "version": ""},
        {"name": "cut", "version": ""},
        {"name": last.id, "version": ""},
    ]


def test_an_unexpected_error_still_ends_the_module(tmp_path: Path) -> None:
    manager = FakeManager()
    body = descriptor("web")
    real_list = manager.list

    def broken_list() -> object:
        if any(c[0] == "create" for c in manager.calls):
            raise RuntimeError("boom")
        return real_list()

    one = descriptor("one")
    source = Source({"http://h/1": one, "http://h/a": body})
    manager.list = broken_list  # type: ignore[method-assign]
    value = install_value(artifact("http://h/1", one), artifact("http://h/a", body))
    recorder = run(tmp_path, manager, source, ("install", value))
    assert recorder.statuses()[-1] == "FINISHED_ERROR"
    assert recorder.events[-1][0] is True
    message = str(recorder.last()["message"])
    assert message.startswith("internal runtime error: boom; the install was rolled back")
    assert manager.views == {}


class Unhealthy:
    """The health monitor's verdict for containers of one image: never healthy."""

    def __init__(self, manager: FakeManager, image: str) -> None:
        self.manager = manager
        self.image = image

    def verdict(
        self, container_id: str, started_at: str | None = None, /
    ) -> tuple[str, float] | None:
        if self.manager.get(ContainerId(container_id)).image_ref != self.image:
            return None
        return "unhealthy", 0.0


def run_gated(
    tmp_path: Path, manager: FakeManager, source: Source, value: dict[str, object]
) -> Recorder:
    recorder = Recorder()
    gate = ActivationGate(manager, Unhealthy(manager, "localhost/sick:1"), monitor=0, timeout=0)
    runner = Runner(
        manager, source, Journal(tmp_path / "journal"), recorder, stop_timeout=1, gate=gate
    )
    runner.start()
    runner.submit("install", value)
    runner.close()
    return recorder


def test_an_unhealthy_new_container_rolls_the_install_back(tmp_path: Path) -> None:
    manager = FakeManager()
    old = manager.create("localhost/old:1", ContainerConfig(), "web")
    manager.start(old.id)
    body = descriptor("web", "localhost/sick:1")
    value = install_value(artifact("http://h/a", body))
    recorder = run_gated(tmp_path, manager, Source({"http://h/a": body}), value)
    (view,) = manager.list()
    assert (view.id, view.name, view.state.status) == (old.id, "web", Status.RUNNING)
    assert recorder.statuses()[-2:] == ["INSTALLED", "FINISHED_ERROR"]
    message = str(recorder.last()["message"])
    assert message.startswith("container web is unhealthy; the install was rolled back")
    assert f"restored web ({old.id})" in message


def test_a_healthy_gate_lets_the_install_finish(tmp_path: Path) -> None:
    manager = FakeManager()
    body = descriptor("web")
    value = install_value(artifact("http://h/a", body))
    recorder = run_gated(tmp_path, manager, Source({"http://h/a": body}), value)
    (view,) = manager.list()
    assert view.state.status is Status.RUNNING
    assert recorder.statuses()[-1] == "FINISHED_SUCCESS"


def test_a_descriptors_container_id_is_honoured(tmp_path: Path) -> None:
    manager = FakeManager()
    body = json.dumps({"container_id": "app-7", "container_name": "web",
                       "image": {"name": IMAGE}}).encode()  # fmt: skip
    source = Source({"http://h/a": body})
    recorder = run(
        tmp_path, manager, source, ("install", install_value(artifact("http://h/a", body)))
    )
    (view,) = manager.list()
    assert (view.id, view.name) == ("app-7", "web")
    assert recorder.statuses()[-1] == "FINISHED_SUCCESS"


def test_a_replaced_container_keeps_its_id_until_the_new_one_runs(tmp_path: Path) -> None:
    manager = FakeManager()
    old = manager.create(IMAGE, ContainerConfig(), "web", container_id="app-7")
    manager.start(old.id)
    body = json.dumps({"container_id": "app-7", "container_name": "web",
                       "image": {"name": "localhost/new:2"}}).encode()  # fmt: skip
    source = Source({"http://h/a": body})
    recorder = run(
        tmp_path, manager, source, ("install", install_value(artifact("http://h/a", body)))
    )
    (view,) = manager.list()
    assert view.id != "app-7" and view.image_ref == "localhost/new:2"
    assert recorder.statuses()[-1] == "FINISHED_SUCCESS"


def test_a_container_id_another_container_holds_is_finished_error(tmp_path: Path) -> None:
    manager = FakeManager()
    manager.create(IMAGE, ContainerConfig(), "other", container_id="app-7")
    body = json.dumps({"container_id": "app-7", "container_name": "web",
                       "image": {"name": IMAGE}}).encode()  # fmt: skip
    source = Source({"http://h/a": body})
    recorder = run(
        tmp_path, manager, source, ("install", install_value(artifact("http://h/a", body)))
    )
    assert [v.name for v in manager.list()] == ["other"]
    assert recorder.statuses()[-1] == "FINISHED_ERROR"
    assert recorder.last()["message"] == "container with id = app-7 already exists"
