"""A full disk (issue 12 item 16): the container that filled the home's filesystem can
be stopped and removed, which must never need free space: kill first, record after, and
retry the record once space returns. Real runc on a tmpfs home of a few MB."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from ocirt.config.state import Status
from ocirt.manager.manager import Manager
from ocirt.manager.types import StopOptions
from ocirt.store.containers import ContainerStore
from tests.support.env import Env
from tests.support.waiting import wait_for

from .manager_support import cfg

pytestmark = pytest.mark.integration

# Once /go exists, fills its rootfs (on the home's filesystem) until the disk is full,
# then waits for TERM.
FILL = (
    "sh",
    "-c",
    "trap 'exit 0' TERM; while [ ! -e /go ]; do sleep 0.05; done;"
    " dd if=/dev/zero of=/fill bs=64k; while :; do sleep 0.05; done",
)


@pytest.fixture
def small_home(env: Env) -> Iterator[Env]:
    env.home.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(env.home)], check=True)
    try:
        yield env
    finally:
        env.clean_up()
        subprocess.run(["umount", "-l", str(env.home)], check=False)


def free_bytes(env: Env) -> int:
    st = os.statvfs(env.home)
    return st.f_bavail * st.f_frsize


def test_the_container_that_filled_the_disk_stops_and_is_removed(small_home: Env) -> None:
    env = small_home
    mgr: Manager = env.manager()
    filler = mgr.create("img", cfg(*FILL))
    other = mgr.create("img", cfg())
    mgr.start(other.id)
    mgr.start(filler.id)
    env.exec(filler.id, "touch", "/go")
    wait_for("a full disk", lambda: free_bytes(env) == 0)

    stopped = mgr.stop(filler.id, StopOptions(timeout=10))
    # The monitor reserved the space of its exit record: the exit is known.
    assert (stopped.state.status, stopped.state.exit_code, stopped.state.error) == (
        Status.STOPPED,
        0,
        "",
    )
    assert filler.id not in env.runc_ids()
    # A stop of another container needs no space either.
    assert mgr.stop(other.id, StopOptions(timeout=10)).state.exit_code == 0

    # Space returns: the records the full disk held back are written.
    mgr.remove(filler.id)
    assert not (env.home / "containers" / filler.id).exists()
    assert free_bytes(env) > 0
    mgr.supervisor.sweep()
    wait_for(
        "the record of the other stop",
        lambda: ContainerStore(env.home).load(other.id).runtime.state.status is Status.STOPPED,
    )
    assert ContainerStore(env.home).load(other.id).runtime.manually_stopped
    mgr.close()
    again = env.manager()
    assert [v.id for v in again.list()] == [other.id]
    assert again.get(other.id).state.status is Status.STOPPED


def test_a_running_container_is_removed_with_force_on_a_full_disk(small_home: Env) -> None:
    env = small_home
    mgr: Manager = env.manager()
    filler = mgr.create("img", cfg(*FILL))
    mgr.start(filler.id)
    env.exec(filler.id, "touch", "/go")
    wait_for("a full disk", lambda: free_bytes(env) == 0)
    mgr.remove(filler.id, force=True)
    assert filler.id not in env.runc_ids()
    assert not (env.home / "containers" / filler.id).exists()
    assert mgr.list() == []
