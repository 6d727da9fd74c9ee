"""The local API's image operations over a fake image store: in-use refusal, progress,
the daemon's default keys, and nothing left behind by a failed pull."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ocirt.cli.client import request, stream
from ocirt.cli.errors import CliError
from ocirt.config.model import ContainerConfig
from ocirt.daemon import localapi
from ocirt.daemon.localapi import ApiHandlers, ImageHandlers, LocalApi
from ocirt.errors import ImageNotFound, RegistryUnavailable
from ocirt.image.content.store import DamagedRecord
from ocirt.image.reference import parse_digest
from ocirt.image.service import ImageListing, Progress
from tests.support.fake_manager import FakeManager

DIGEST = "sha256:" + "ab" * 32
LAYER = parse_digest("sha256:" + "cd" * 32)


@dataclass
class FakeImage:
    reference: str
    digest: str = DIGEST
    size: int = 10
    pulled_at: float = 1.5


class FakeImages:
    def __init__(self) -> None:
        self.store: dict[str, FakeImage] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.fail: Exception | None = None
        self.reports: list[Progress] = []
        self.damaged: list[DamagedRecord] = []

    def images(self) -> list[FakeImage]:
        return list(self.store.values())

    def listing(self) -> ImageListing:
        return ImageListing(self.images(), list(self.damaged))  # type: ignore[arg-type]

    def remove_damaged(self, name: str) -> None:
        self.calls.append(("remove_damaged", name))
        self.damaged = [d for d in self.damaged if d.name != name]

    def pull(self, reference: str, keys: Any, progress: Callable[[Progress], None]) -> FakeImage:
        self.calls.append(("pull", reference, keys))
        # Reported from another thread, as the layer workers do.
        worker = threading.Thread(target=lambda: [progress(r) for r in self.reports])
        worker.start()
        worker.join()
        if self.fail is not None:
            raise self.fail
        image = self.store[reference] = FakeImage(reference)
        return image

    def remove(self, reference: str) -> None:
        self.calls.append(("remove", reference))
        if self.store.pop(reference, None) is None:
            raise ImageNotFound(f"image {reference} is not present")

    def load(self, path: Path, name: str | None) -> list[FakeImage]:
        self.calls.append(("load", path, name))
        return [FakeImage("docker.io/library/x:1")]

    def save(self, references: list[str], dest: Path) -> None:
        self.calls.append(("save", references, dest))

    def gc(self, in_use: set[str], expiry: float | None) -> None:
        self.calls.append(("gc", in_use, expiry))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, FakeManager, FakeImages]]:
    manager = FakeManager()
    images = FakeImages()
    handlers = ImageHandlers(images, manager.list)
    path = tmp_path / "run" / "ocirt.sock"
    server = LocalApi(path, ApiHandlers(manager, lambda: {}, images=handlers))
    server.start()
    try:
        yield path, manager, images
    finally:
        server.close()


def test_pull_list_remove(api: tuple[Path, FakeManager, FakeImages]) -> None:
    path, _, images = api
    images.fail = None
    got = request(path, "image.pull", {"reference": "docker.io/library/a:1"})
    assert got == {
        "reference": "docker.io/library/a:1",
        "digest": DIGEST,
        "size": 10,
        "pulledAt": 1.5,
    }
    assert [i["reference"] for i in request(path, "image.list", {})] == ["docker.io/library/a:1"]
    assert request(path, "image.remove", {"reference": "a:1"}) == {
        "reference": "docker.io/library/a:1"
    }
    assert request(path, "image.list", {}) == []


def test_an_image_in_use_is_removed_only_when_forced(
    api: tuple[Path, FakeManager, FakeImages],
) -> None:
    path, manager, images = api
    request(path, "image.pull", {"reference": "docker.io/library/a:1"})
    view = manager.create("a:1", ContainerConfig(), "web")
    with pytest.raises(CliError) as caught:
        request(path, "image.remove", {"reference": "docker.io/library/a:1"})
    assert caught.value.message == (
        f"image docker.io/library/a:1 is used by container web ({view.id}): remove the "
        "container first, or force the removal"
    )
    assert ("remove", "docker.io/library/a:1") not in images.calls
    request(path, "image.remove", {"reference": "a:1", "force": True})
    assert images.store == {}


def test_a_failed_pull_sweeps_what_it_stored(api: tuple[Path, FakeManager, FakeImages]) -> None:
    path, _, images = api
    images.fail = RegistryUnavailable("a:1: cannot reach registry")
    with pytest.raises(CliError, match="cannot reach registry"):
        request(path, "image.pull", {"reference": "a:1"})
    assert images.calls[-1] == ("gc", set(), None)
    assert images.store == {}


def test_pull_uses_the_daemons_keys_when_given_none(
    api: tuple[Path, FakeManager, FakeImages], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, images = api
    handlers = ImageHandlers(images, list, (("/keys/k.pem",), ()))
    loaded: list[tuple[list[str], list[str]]] = []
    import ocirt.image.service

    def load(keys: list[str], recipients: list[str]) -> str:
        loaded.append((keys, recipients))
        return "KEYS"

    monkeypatch.setattr(ocirt.image.service, "load_decrypt_keys", load)
    list(handlers.pull({"reference": "a:1"}))
    list(handlers.pull({"reference": "b:1", "recipients": ["pkcs7:/c.pem"]}))
    request(path, "image.pull", {"reference": "c:1"})  # a daemon without default keys
    assert loaded == [(["/keys/k.pem"], []), ([], ["pkcs7:/c.pem"])]
    assert [c[2] for c in images.calls if c[0] == "pull"] == ["KEYS", "KEYS", None]


def test_pull_streams_throttled_progress_and_every_layers_end(
    api: tuple[Path, FakeManager, FakeImages], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, images = api
    monkeypatch.setattr(localapi, "PROGRESS_INTERVAL", 3600.0)
    images.reports = [Progress("a:1", LAYER, done, 100) for done in (0, 10, 50, 100)]
    messages = list(stream(path, "image.pull", {"reference": "a:1"}))
    progress = [m["progress"] for m in messages if "progress" in m]
    # The first report, then (the interval not being over) only the layer's end.
    assert progress == [
        {"layer": str(LAYER), "done": 0, "total": 100},
        {"layer": str(LAYER), "done": 100, "total": 100},
    ]
    assert messages[-1]["ok"] is True


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        ("image.pull", {}, "reference is required"),
        ("image.pull", {"reference": "a", "keys": "k"}, "keys must be a list of strings"),
        ("image.load", {"path": "rel/dir"}, "path must be an absolute path (the daemon reads it)"),
        ("image.save", {"output": "/o", "references": []}, "references are required"),
        ("image.frobnicate", {}, "unknown operation 'image.frobnicate'"),
    ],
)
def test_bad_image_requests_are_400s(
    api: tuple[Path, FakeManager, FakeImages], op: str, args: dict[str, Any], message: str
) -> None:
    path, _, _ = api
    with pytest.raises(CliError) as caught:
        request(path, op, args)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_load_and_save_reach_the_store(api: tuple[Path, FakeManager, FakeImages]) -> None:
    path, _, images = api
    loaded = request(path, "image.load", {"path": "/tmp/layout", "name": "x"})
    assert [i["reference"] for i in loaded] == ["docker.io/library/x:1"]
    request(path, "image.save", {"output": "/tmp/out.tar", "references": ["x:1"]})
    assert images.calls[-2:] == [
        ("load", Path("/tmp/layout"), "x"),
        ("save", ["x:1"], Path("/tmp/out.tar")),
    ]


def test_a_damaged_record_is_listed_with_its_reason_and_removable(
    api: tuple[Path, FakeManager, FakeImages],
) -> None:
    path, _, images = api
    images.store["docker.io/library/ok:1"] = FakeImage("docker.io/library/ok:1")
    images.damaged = [DamagedRecord("bad.json", None, "not JSON: Expecting value")]
    listed = request(path, "image.list", {})
    assert [i["reference"] for i in listed if "damaged" not in i] == ["docker.io/library/ok:1"]
    assert [i for i in listed if "damaged" in i] == [
        {"reference": "", "record": "bad.json", "damaged": "not JSON: Expecting value"}
    ]
    assert request(path, "image.remove", {"reference": "bad.json"}) == {"reference": "bad.json"}
    assert ("remove_damaged", "bad.json") in images.calls
    assert [i for i in request(path, "image.list", {}) if "damaged" in i] == []
