"""Recovery on the fakes: a second manager over the store and the runtime a first one
left (containers outlive the manager, docs/kanto-compatibility.md decision 10). Every path of the
reconciliation."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from ocirt.config.model import RestartPolicy, RestartPolicyType
from ocirt.config.state import Status
from ocirt.errors import FailedPrecondition, NetworkError, NotFound, RuncError
from ocirt.manager.manager import Manager
from ocirt.runtime.runc import RuncStatus
from ocirt.store.containers import ContainerStore
from tests.support.fake_env import FakeEnv, config
from tests.support.waiting import wait_for


def status(mgr: Manager, cid: str) -> Status:
    return mgr.get(cid).state.status


def running(mgr: Manager, **changes: object) -> str:
    cid = mgr.create("busybox", config(**changes)).id
    mgr.start(cid)
    return cid


def store(env: FakeEnv) -> ContainerStore:
    return ContainerStore(env.base / "home")


def test_a_running_container_is_reattached(env: FakeEnv) -> None:
    first = env.manager()
    cid = running(first)
    pid = first.get(cid).state.pid
    first.close()
    second = env.manager()
    view = second.get(cid)
    assert (view.state.status, view.state.pid) == (Status.RUNNING, pid)
    # Still controlled: it can be stopped by the new manager.
    assert second.stop(cid).state.status is Status.STOPPED


def test_runc_says_which_of_running_and_paused(env: FakeEnv) -> None:
    first = env.manager()
    cid = running(first)
    first.close()
    # Paused behind the manager's back (or the record was written before the pause).
    env.runtime.runs[cid].status = RuncStatus.PAUSED
    env.runtime.runs[cid].pid = 4242
    second = env.manager()
    view = second.get(cid)
    assert (view.state.status, view.state.pid) == (Status.PAUSED, 4242)
    assert store(env).load(cid).runtime.state.status is Status.PAUSED


def test_an_exit_while_no_manager_ran_is_applied_with_the_policy(env: FakeEnv) -> None:
    first = env.manager()
    cid = running(first, restart_policy=RestartPolicy(RestartPolicyType.ON_FAILURE))
    first.close()
    env.runtime.exit(cid, 9, notify=False)
    second = env.manager()
    wait_for("the restart", lambda: second.get(cid).restart_count == 1)
    wait_for("running", lambda: status(second, cid) is Status.RUNNING)
    assert env.runtime.verbs(cid).count("launch") == 2


def test_a_monitor_that_died_without_a_record(env: FakeEnv) -> None:
    first = env.manager()
    cid = running(first)
    first.close()
    env.runtime.exit(cid, 0, record=False, notify=False)
    second = env.manager()
    view = second.get(cid)
    assert view.state.status is Status.EXITED
    assert view.state.exit_code == -1
    assert env.runtime.verbs(cid)[-1] == "delete"


def test_a_monitor_that_outlived_its_container_gets_time_to_record(env: FakeEnv) -> None:
    first = env.manager()
    cid = running(first)
    first.close()
    # runc has no container any more, the monitor still runs and records a moment later.
    env.runtime.runs[cid].present = False
    timer = threading.Timer(0.2, lambda: env.runtime.exit(cid, 4, notify=False))
    timer.start()
    try:
        second = env.manager()
    finally:
        timer.join()
    view = second.get(cid)
    assert view.state.status is Status.EXITED
    assert view.state.exit_code == 4


def test_a_stopped_container_keeps_no_runtime_container(env: FakeEnv) -> None:
    first = env.manager()
    cid = running(first)
    first.stop(cid)
    first.close()
    # A start cut short after `runc run`: the runtime has a container, the store says STOPPED.
    env.runtime.adopt(cid, env.runtime.runs[cid].state_dir, RuncStatus.RUNNING)
    env.runtime.calls.clear()
    second = env.manager()
    assert status(second, cid) is Status.STOPPED
    assert env.runtime.verbs(cid) == ["delete"]


def test_leftovers_are_deleted(env: FakeEnv) -> None:
    first = env.manager()
    kept = first.create("busybox", config(), name="kept").id
    creating = first.create("busybox", config(), name="creating").id
    dead = first.create("busybox", config(), name="dead").id
    first.close()
    disk = store(env)
    for cid, state in ((creating, Status.CREATING), (dead, Status.DEAD)):
        stored = disk.load(cid)
        disk.save(
            replace(
                stored,
                runtime=replace(stored.runtime, state=replace(stored.runtime.state, status=state)),
            )
        )
    half = env.base / "home" / "containers" / "half-made"
    half.mkdir()
    env.runtime.adopt("stranger", env.base / "nowhere", RuncStatus.RUNNING)
    second = env.manager()
    assert [v.id for v in second.list()] == [kept]
    for cid in (creating, dead):
        with pytest.raises(NotFound):
            second.get(cid)
        assert not (env.base / "home" / "containers" / cid).exists()
    assert not half.exists()
    assert ("delete", "stranger") in env.runtime.calls
    assert ("delete", "half-made") in env.runtime.calls
    reconciled = [c for c in env.network.calls if c[0] == "reconcile"][-1]
    assert reconciled == ("reconcile", frozenset({kept}))
    # The names of the deleted containers are free again.
    assert second.create("busybox", config(), name="dead").name == "dead"


@pytest.mark.parametrize("damage", ["garbled", "missing", "empty"])
def test_a_damaged_record_is_kept_reported_and_removable(env: FakeEnv, damage: str) -> None:
    first = env.manager()
    cid = running(first)
    other = running(first)
    pid = first.get(cid).state.pid
    first.close()
    directory = env.base / "home" / "containers" / cid
    (directory / "json.log").write_text(
        '{"log":"kept\\n","stream":"stdout","time":"2024-05-01T10:00:00Z"}\n'
    )
    record = directory / "config.json"
    if damage == "missing":
        record.unlink()
    else:
        record.write_bytes(b"{not json" if damage == "garbled" else b"")
    env.runtime.calls.clear()
    second = env.manager()

    # Kept as it is: its process runs on, its directory, spec and log stay.
    assert env.runtime.verbs(cid) == []
    assert env.runtime.runs[cid].status is RuncStatus.RUNNING
    assert (directory / "bundle" / "config.json").exists()
    assert [e.text for e in second.logs(cid)] == ["kept\n"]
    # Reported: listed with the state UNKNOWN and why, as the twin shows it.
    view = second.get(cid)
    assert view.state.status is Status.UNKNOWN
    assert view.state.pid == pid
    reason = "config.json is missing" if damage == "missing" else "invalid persisted container"
    assert view.state.error.startswith(f"damaged: {reason}")
    assert {v.id for v in second.list()} == {cid, other}
    reconciled = [c for c in env.network.calls if c[0] == "reconcile"][-1]
    assert reconciled == ("reconcile", frozenset({cid, other}))
    # Nothing but remove: its record on disk is all there is, and is never overwritten.
    for act in (second.start, second.stop, second.pause, lambda c: second.rename(c, "x")):
        with pytest.raises(FailedPrecondition, match=f"^the container with id = {cid} is damaged"):
            act(cid)
    if damage != "missing":
        assert record.read_bytes() in (b"{not json", b"")
    second.remove(cid)
    assert ("kill", cid, "SIGKILL") in env.runtime.calls
    assert ("delete", cid) in env.runtime.calls
    assert ("detach", cid) in env.network.calls
    assert not directory.exists()
    with pytest.raises(NotFound):
        second.get(cid)
    assert [v.id for v in second.list()] == [other]


def test_a_damaged_container_is_not_started_by_its_policy(env: FakeEnv) -> None:
    first = env.manager()
    cid = running(first, restart_policy=RestartPolicy(RestartPolicyType.ALWAYS))
    first.stop(cid)
    first.close()
    (env.base / "home" / "containers" / cid / "config.json").unlink()
    second = env.manager()
    assert status(second, cid) is Status.UNKNOWN
    second.close()
    assert env.runtime.verbs(cid).count("launch") == 1


def test_a_directory_of_a_container_that_never_ran_is_a_half_created_one(env: FakeEnv) -> None:
    first = env.manager()
    cid = first.create("busybox", config()).id
    first.close()
    (env.base / "home" / "containers" / cid / "config.json").unlink()
    second = env.manager()
    assert second.list() == []
    assert not (env.base / "home" / "containers" / cid).exists()


def test_failures_of_the_runtime_and_network_do_not_stop_recovery(env: FakeEnv) -> None:
    first = env.manager()
    cid = first.create("busybox", config()).id
    first.close()
    env.runtime.fail("list", RuncError("runc list failed"))
    env.network.fail("reconcile", NetworkError("netlink down"))
    second = env.manager()
    assert [v.id for v in second.list()] == [cid]


def test_containers_that_ran_are_started_as_their_policy_says(env: FakeEnv) -> None:
    first = env.manager()
    always = running(first, restart_policy=RestartPolicy(RestartPolicyType.ALWAYS))
    unless = running(first, restart_policy=RestartPolicy(RestartPolicyType.UNLESS_STOPPED))
    never_ran = first.create(
        "busybox", config(restart_policy=RestartPolicy(RestartPolicyType.ALWAYS))
    ).id
    first.stop(always)
    first.stop(unless)
    first.close()
    second = env.manager()
    # `always` comes back even after a manual stop (docs/kanto-compatibility.md decision 9);
    # unless-stopped does not.
    wait_for("the boot start", lambda: status(second, always) is Status.RUNNING)
    assert status(second, unless) is Status.STOPPED
    assert status(second, never_ran) is Status.CREATED


def test_a_failed_delete_is_logged_not_raised(env: FakeEnv) -> None:
    env.runtime.adopt("stranger", env.base / "nowhere", RuncStatus.RUNNING)
    env.runtime.fail("delete", RuncError("runc delete failed"))
    mgr = env.manager()
    assert mgr.list() == []


def test_closing_an_old_manager_again_leaves_the_new_ones_socket(env: FakeEnv) -> None:
    first = env.manager()
    first.close()
    second = env.manager()
    first.close()
    assert second.settings.notify_socket.exists()
    cid = running(second)
    env.runtime.exit(cid, 5)  # a notice on the socket, no sweep needed
    wait_for("the exit", lambda: status(second, cid) is Status.EXITED, timeout=4.0)
