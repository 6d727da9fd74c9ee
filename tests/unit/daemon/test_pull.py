"""The pull helper's runner: one helper for concurrent pulls of one image, and
cancellation ending the helpers under way (with a stand-in helper: no registry)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ocirt.daemon.pull import HelperPull
from ocirt.errors import OcirtError
from ocirt.image.registry.auth import RegistryAccess
from ocirt.image.registry.control import PullCancelled
from tests.support.waiting import wait_for


def helper(tmp_path: Path, body: str) -> HelperPull:
    runs = tmp_path / "runs"
    runs.touch()
    pulls = HelperPull(tmp_path / "home", RegistryAccess(), stall_timeout=5.0, pull_deadline=9.0)
    # Reads the request (as the real helper does), counts itself, then `body`.
    pulls.command = ["sh", "-c", f"cat > {tmp_path}/request; echo run >> {runs}; {body}"]
    return pulls


def test_concurrent_pulls_of_one_image_share_one_helper(tmp_path: Path) -> None:
    pulls = helper(tmp_path, f"while [ ! -e {tmp_path}/go ]; do sleep 0.01; done; "
                   "echo '{\"ok\": true}'")  # fmt: skip
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            pulls("registry.local/app:1", (), ())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(3)]
    for thread in threads:
        thread.start()
    wait_for("the helper", lambda: (tmp_path / "runs").read_text() == "run\n")
    (tmp_path / "go").touch()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert (tmp_path / "runs").read_text() == "run\n"  # one helper for the three
    request = (tmp_path / "request").read_text()
    assert '"stallTimeout": 5.0' in request and '"deadline": 9.0' in request


def test_cancel_all_ends_the_helpers_under_way(tmp_path: Path) -> None:
    pulls = helper(tmp_path, "sleep 60")
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            pulls("registry.local/app:1", (), ())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for thread in threads:
        thread.start()
    wait_for("the helper", lambda: (tmp_path / "runs").read_text() == "run\n")
    assert pulls.cancel_all("cancelled: the daemon is stopping") == 1
    for thread in threads:
        thread.join(30)
    assert len(errors) == 2
    assert all(isinstance(e, PullCancelled) for e in errors)
    assert all("the daemon is stopping" in str(e) for e in errors)


def test_a_helper_error_keeps_its_class(tmp_path: Path) -> None:
    pulls = helper(
        tmp_path, 'echo \'{"ok": false, "error": {"type": "ImageNotFound", "message": "no"}}\''
    )
    with pytest.raises(OcirtError) as caught:
        pulls("registry.local/app:1", (), ())
    assert type(caught.value).__name__ == "ImageNotFound"
