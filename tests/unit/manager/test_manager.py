"""The manager's use cases on a recording runtime (`tests.support.fake_runtime`): state
changes, what reaches the runtime, persistence, events in Kanto's order, stop options,
restart policies with back-off, and the refusals. No root, no runc."""

from __future__ import annotations

import json

import pytest

from ocirt.config.ditto import parse_update
from ocirt.config.model import (
    LogConfig,
    LogDriver,
    MountPoint,
    NetworkMode,
    RestartPolicy,
    RestartPolicyType,
)
from ocirt.config.state import Status
from ocirt.errors import (
    AlreadyExists,
    FailedPrecondition,
    ImageError,
    InvalidArgument,
    NetworkError,
    NotFound,
    OcirtError,
    RuncError,
    ValidationError,
)
from ocirt.manager.manager import Manager
from ocirt.manager.types import StopOptions
from ocirt.store.containers import ContainerStore, StoredContainer
from tests.support.fake_env import FakeEnv, config
from tests.support.recorder import Recorder
from tests.support.waiting import wait_for


def status(mgr: Manager, cid: str) -> Status:
    return mgr.get(cid).state.status


def running(mgr: Manager, **changes: object) -> str:
    cid = mgr.create("busybox", config(**changes)).id
    mgr.start(cid)
    return cid


def persisted(env: FakeEnv, cid: str) -> StoredContainer:
    """What a manager started now would load."""
    return ContainerStore(env.base / "home").load(cid)


# ---------------------------------------------------------------------- create


def test_create_persists_and_runs_nothing(env: FakeEnv, mgr: Manager, events: Recorder) -> None:
    view = mgr.create("busybox", config(), name="web")
    assert view.name == "web"
    assert view.state.status is Status.CREATED
    # Defaults are filled once, at create: the host name follows the container's name.
    assert view.config.host_name == "web-host"
    assert env.runtime.verbs(view.id) == []
    assert persisted(env, view.id).definition.name == "web"
    # The spec is built (checked) at create, and written only at start.
    assert not (env.base / "home" / "containers" / view.id / "bundle" / "config.json").exists()
    assert events.wait(view.id, 2) == [("created", "CREATED"), ("state", "CREATED")]


def test_an_unnamed_container_is_named_after_its_id(mgr: Manager) -> None:
    view = mgr.create("busybox", config())
    assert view.name == view.id


def test_names_are_unique(mgr: Manager) -> None:
    mgr.create("busybox", config(), name="one")
    with pytest.raises(AlreadyExists) as info:
        mgr.create("busybox", config(), name="one")
    assert info.value.message == "container with name = one already exists"


def test_an_invalid_config_is_refused_before_anything_is_made(env: FakeEnv, mgr: Manager) -> None:
    with pytest.raises(ValidationError):
        mgr.create("busybox", config(), name="bad name!")
    assert mgr.list() == []
    assert not (env.base / "home" / "containers").exists() or not list(
        (env.base / "home" / "containers").iterdir()
    )


def test_an_unrunnable_spec_is_refused_at_create_and_nothing_stays(
    env: FakeEnv, mgr: Manager
) -> None:
    # Neither the image nor the config has a command: refused now, not at start.
    with pytest.raises(InvalidArgument) as info:
        mgr.create("busybox", config(cmd=()))
    assert info.value.message == "no command specified: the image has none and the config none"
    assert mgr.list() == []
    assert list((env.base / "home" / "containers").iterdir()) == []


def test_a_missing_mount_source_is_refused_at_create_and_nothing_stays(
    env: FakeEnv, mgr: Manager
) -> None:
    there = env.base / "data"
    there.mkdir()
    missing = env.base / "nowhere"
    mounts = (MountPoint(str(there), "/a"), MountPoint(str(missing), "/b"))
    with pytest.raises(InvalidArgument) as info:
        mgr.create("busybox", config(mount_points=mounts))
    assert info.value.status == 400
    assert info.value.message == (
        f"the source of mount point {missing} cannot be used: No such file or directory"
    )
    assert mgr.list() == []
    assert list((env.base / "home" / "containers").iterdir()) == []
    assert mgr.create("busybox", config(mount_points=mounts[:1])).id


def test_a_rootfs_failure_leaves_nothing(env: FakeEnv, mgr: Manager) -> None:
    (env.rootfs / "etc" / "passwd").unlink()
    (env.rootfs / "etc").rmdir()
    env.rootfs.rmdir()
    with pytest.raises(ImageError):
        mgr.create("busybox", config(), name="gone")
    assert mgr.list() == []
    assert list((env.base / "home" / "containers").iterdir()) == []
    # The name is free again.
    env.rootfs.mkdir()
    assert mgr.create("busybox", config(), name="gone").name == "gone"


def test_a_network_the_manager_cannot_serve_is_refused_at_create(
    env: FakeEnv, mgr: Manager
) -> None:
    env.network.fail("planned", NetworkError("no bridge"))
    with pytest.raises(NetworkError):
        mgr.create("busybox", config(network_mode=NetworkMode.BRIDGE))
    assert mgr.list() == []


# ---------------------------------------------------------------------- start


def test_start_writes_the_spec_and_launches(env: FakeEnv, mgr: Manager, events: Recorder) -> None:
    cid = mgr.create("busybox", config(network_mode=NetworkMode.BRIDGE)).id
    view = mgr.start(cid)
    assert view.state.status is Status.RUNNING
    assert view.state.pid == env.runtime.runs[cid].pid
    assert view.started_successfully_before
    assert env.runtime.verbs(cid) == ["forget", "launch", "save_handle"]
    spec = json.loads(
        (env.base / "home" / "containers" / cid / "bundle" / "config.json").read_text()
    )
    # The network's own name for the namespace, the one it attached.
    assert {"type": "network", "path": f"/var/run/netns/fake-{cid}"} in spec["linux"]["namespaces"]
    assert ("attach", cid) in env.network.calls
    assert events.wait(cid, 3)[-1] == ("state", "RUNNING")


def test_a_failed_launch_ends_stopped_with_the_error(
    env: FakeEnv, mgr: Manager, events: Recorder
) -> None:
    cid = mgr.create("busybox", config()).id
    env.runtime.fail("launch", RuncError("runc run failed", stderr="exec: no such file"))
    with pytest.raises(RuncError):
        mgr.start(cid)
    view = mgr.get(cid)
    assert view.state.status is Status.STOPPED
    assert view.state.error.startswith("runc run failed")
    assert view.state.pid == -1
    # What the run held is released.
    assert env.runtime.verbs(cid)[-1] == "delete"
    assert ("detach", cid) in env.network.calls
    assert events.wait(cid, 3)[-1] == ("state", "STOPPED")
    assert persisted(env, cid).runtime.state.status is Status.STOPPED


def test_an_os_error_at_start_becomes_an_ocirt_error(env: FakeEnv, mgr: Manager) -> None:
    cid = mgr.create("busybox", config()).id
    env.network.fail("attach", NetworkError("no address left"))
    with pytest.raises(NetworkError, match="no address left"):
        mgr.start(cid)
    (env.rootfs / "x").write_text("")  # the copy is the container's own: unaffected
    rootfs = env.base / "home" / "containers" / cid / "bundle" / "rootfs"
    for child in rootfs.iterdir():
        if child.is_dir():
            for f in child.iterdir():
                f.unlink()
            child.rmdir()
    rootfs.rmdir()
    with pytest.raises(OcirtError) as info:
        mgr.start(cid)
    assert "missing" in info.value.message
    assert status(mgr, cid) is Status.STOPPED


def test_start_refusals(mgr: Manager) -> None:
    cid = running(mgr)
    with pytest.raises(FailedPrecondition) as info:
        mgr.start(cid)
    assert info.value.message == f"the container with id = {cid} is already running"
    with pytest.raises(NotFound) as missing:
        mgr.start("nope")
    assert missing.value.message == "no such container with id = nope exists"


# ---------------------------------------------------------------------- stop


def test_a_plain_stop_is_sigterm(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    view = mgr.stop(cid)
    assert view.state.status is Status.STOPPED
    assert view.state.exit_code == 128 + 15
    assert view.manually_stopped
    assert env.runtime.runs[cid].signals == ["SIGTERM"]


def test_a_plain_stop_ends_in_sigkill_after_the_default_timeout(env: FakeEnv, mgr: Manager) -> None:
    env.runtime.ignored.add("SIGTERM")
    cid = running(mgr)
    view = mgr.stop(cid)
    assert env.runtime.runs[cid].signals == ["SIGTERM", "SIGKILL"]
    assert view.state.status is Status.STOPPED
    assert view.state.exit_code == 128 + 9


def test_stop_without_force_gives_kantos_error_and_keeps_running(
    env: FakeEnv, mgr: Manager
) -> None:
    env.runtime.ignored.add("SIGINT")
    cid = running(mgr)
    with pytest.raises(FailedPrecondition) as info:
        mgr.stop(cid, StopOptions(signal="int", timeout=0.1, force=False))
    assert info.value.message == f"could not stop container with ID = {cid} with SIGINT"
    view = mgr.get(cid)
    assert view.state.status is Status.RUNNING
    # The manual-stop mark is taken back: the stop did not happen.
    assert not view.manually_stopped
    assert env.runtime.runs[cid].signals == ["SIGINT"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (StopOptions(signal="bogus", timeout=-3), "the timeout = -3 shouldn't be negative"),
        (StopOptions(signal="SIGNOPE"), "invalid signal = SIGNOPE"),
        (StopOptions(signal="256"), "invalid signal = 256"),
    ],
)
def test_stop_options_are_checked_first(
    env: FakeEnv, mgr: Manager, options: StopOptions, message: str
) -> None:
    cid = running(mgr)
    with pytest.raises(InvalidArgument) as info:
        mgr.stop(cid, options)
    assert info.value.message == message
    assert env.runtime.runs[cid].signals == []
    assert status(mgr, cid) is Status.RUNNING


def test_stopping_a_paused_container_thaws_it(env: FakeEnv, mgr: Manager) -> None:
    env.runtime.ignored.add("SIGTERM")
    cid = running(mgr)
    mgr.pause(cid)
    mgr.stop(cid, StopOptions(timeout=0))
    assert env.runtime.verbs(cid)[-6:] == ["pause", "kill", "resume", "kill", "resume", "delete"]
    assert status(mgr, cid) is Status.STOPPED


def test_a_container_that_exited_before_the_signal_is_just_stopped(
    env: FakeEnv, mgr: Manager
) -> None:
    cid = running(mgr)
    env.runtime.exit(cid, 3, notify=False)
    # The exit is applied first: a stop of an exited container is refused (Kanto).
    with pytest.raises(FailedPrecondition):
        mgr.stop(cid)
    assert mgr.get(cid).state.exit_code == 3


def test_stop_refused_when_not_running(mgr: Manager) -> None:
    cid = mgr.create("busybox", config()).id
    with pytest.raises(FailedPrecondition) as info:
        mgr.stop(cid)
    assert info.value.message == (
        f"cannot perform stop operation for container: {cid}, with state: Created"
    )


# ---------------------------------------------------------------------- pause / resume


def test_pause_and_resume(env: FakeEnv, mgr: Manager, events: Recorder) -> None:
    cid = running(mgr)
    assert mgr.pause(cid).state.status is Status.PAUSED
    with pytest.raises(FailedPrecondition) as info:
        mgr.pause(cid)
    assert info.value.message == (
        f"container with id = {cid} is not running - current status is Paused"
    )
    assert mgr.resume(cid).state.status is Status.RUNNING
    with pytest.raises(FailedPrecondition) as resumed:
        mgr.resume(cid)
    assert resumed.value.message == f"container id = {cid} is not paused - cannot unpause it "
    assert events.wait(cid, 5)[-2:] == [("state", "PAUSED"), ("state", "RUNNING")]


def test_a_failed_pause_changes_nothing(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    env.runtime.fail("pause", RuncError("runc pause failed"))
    with pytest.raises(RuncError):
        mgr.pause(cid)
    assert status(mgr, cid) is Status.RUNNING


# ---------------------------------------------------------------------- rename / update


def test_rename(env: FakeEnv, mgr: Manager, events: Recorder) -> None:
    cid = mgr.create("busybox", config(), name="a").id
    mgr.create("busybox", config(), name="b")
    with pytest.raises(AlreadyExists):
        mgr.rename(cid, "b")
    with pytest.raises(ValidationError):
        mgr.rename(cid, "no spaces")
    assert mgr.rename(cid, "").name == "a"
    assert mgr.rename(cid, "a").name == "a"
    assert mgr.rename(cid, "c").name == "c"
    assert persisted(env, cid).definition.name == "c"
    assert events.wait(cid, 3)[-1] == ("renamed", "CREATED")
    # The old name is free.
    assert mgr.create("busybox", config(), name="a").name == "a"


def test_update_applies_memory_live_to_a_running_container(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    view = mgr.update(cid, parse_update({"resources": {"memory": "64M"}}))
    assert view.config.resources.memory == "64M"
    assert env.runtime.calls[-1] == ("update_memory", cid, view.config.resources)
    stopped = mgr.create("busybox", config()).id
    mgr.update(stopped, parse_update({"resources": {"memory": "32M"}}))
    assert "update_memory" not in env.runtime.verbs(stopped)


def test_update_of_the_restart_policy_only_persists(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    mgr.update(cid, parse_update({"restartPolicy": {"type": "always"}}))
    assert "update_memory" not in env.runtime.verbs(cid)
    assert mgr.get(cid).config.restart_policy.type is RestartPolicyType.ALWAYS


# ---------------------------------------------------------------------- remove


def test_remove_needs_force_for_a_running_container(
    env: FakeEnv, mgr: Manager, events: Recorder
) -> None:
    cid = running(mgr)
    with pytest.raises(FailedPrecondition) as info:
        mgr.remove(cid)
    assert "must set the force flag to true" in info.value.message
    mgr.remove(cid, force=True)
    assert env.runtime.runs[cid].signals == ["SIGKILL"]
    with pytest.raises(NotFound):
        mgr.get(cid)
    assert not (env.base / "home" / "containers" / cid).exists()
    assert events.wait(cid, 5)[-2:] == [("state", "DEAD"), ("removed", "DEAD")]
    # Removing stops no other event: the forced kill's STOPPED state is not announced.
    assert ("state", "STOPPED") not in events.of(cid)


def test_remove_of_a_created_container(env: FakeEnv, mgr: Manager) -> None:
    cid = mgr.create("busybox", config(), name="x").id
    mgr.remove(cid)
    assert mgr.list() == []
    assert mgr.create("busybox", config(), name="x").name == "x"
    with pytest.raises(NotFound):
        mgr.remove(cid)


# ---------------------------------------------------------------------- queries


def test_list_in_creation_order_and_log_paths(env: FakeEnv, mgr: Manager) -> None:
    ids = [mgr.create("busybox", config(), name=n).id for n in ("c", "a", "b")]
    assert [v.id for v in mgr.list()] == ids
    path = mgr.log_path(ids[0])
    assert path.name == "json.log"
    assert path.parent.name == ids[0]


def test_logs_of_a_container_without_a_log(mgr: Manager) -> None:
    cid = mgr.create("busybox", config(log=LogConfig(driver=LogDriver.NONE))).id
    assert list(mgr.logs(cid)) == []


def test_logs_read_the_json_file(env: FakeEnv, mgr: Manager) -> None:
    cid = mgr.create("busybox", config()).id
    line = {"log": "hello\n", "stream": "stdout", "time": "2024-05-01T10:00:00.1Z"}
    mgr.log_path(cid).write_text(json.dumps(line) + "\n")
    assert [e.text for e in mgr.logs(cid)] == ["hello\n"]
    # Following a container that does not run ends at once.
    assert [e.text for e in mgr.logs(cid, follow=True)] == ["hello\n"]


# ---------------------------------------------------------------------- exits and policies


def test_an_exit_notice_is_applied(env: FakeEnv, mgr: Manager, events: Recorder) -> None:
    cid = running(mgr)
    env.runtime.exit(cid, 7)
    wait_for("the exit", lambda: events.of(cid)[-1] == ("state", "EXITED"))
    view = mgr.get(cid)
    assert view.state.exit_code == 7
    assert view.state.pid == -1
    assert not view.state.oom_killed
    assert env.runtime.verbs(cid)[-1] == "delete"


def test_an_oom_kill_is_kantos_error(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    env.runtime.exit(cid, 137, oom=True, notify=False)
    view = mgr.get(cid)
    assert view.state.status is Status.EXITED
    assert view.state.oom_killed
    assert view.state.error == "OOM Killed"


def test_a_monitor_that_died_without_a_record_lost_the_exit(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    env.runtime.exit(cid, 0, record=False, notify=False)
    view = mgr.get(cid)
    assert view.state.status is Status.EXITED
    assert view.state.exit_code == -1
    assert view.state.error == "the container's monitor ended without recording its exit"


def test_a_damaged_record_is_a_lost_exit_with_the_reason(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    env.runtime.exit(cid, 0, notify=False)
    env.runtime.runs[cid].damaged_record = True
    view = mgr.get(cid)
    assert view.state.status is Status.EXITED
    assert view.state.exit_code == -1
    assert "damaged exit record" in view.state.error


def test_the_sweep_catches_a_lost_notice(env: FakeEnv, mgr: Manager, events: Recorder) -> None:
    cid = running(mgr)
    env.runtime.exit(cid, 1, notify=False)
    mgr.supervisor.sweep()
    wait_for("the exit", lambda: events.of(cid)[-1] == ("state", "EXITED"))


def test_a_notice_for_an_unknown_container_is_ignored(mgr: Manager) -> None:
    mgr.supervisor.on_notice("nope")
    assert mgr.list() == []


def _policy(kind: RestartPolicyType, **kw: int) -> RestartPolicy:
    return RestartPolicy(kind, **kw)


def test_on_failure_restarts_up_to_the_retry_count_with_back_off(
    env: FakeEnv, mgr: Manager
) -> None:
    cid = running(mgr, restart_policy=_policy(RestartPolicyType.ON_FAILURE, max_retry_count=2))
    slot = mgr.registry.get(cid)
    backoffs = []
    for expected_count in (1, 2):
        env.runtime.exit(cid, 1)
        wait_for(
            "the restart",
            lambda n=expected_count: (  # type: ignore[misc]
                mgr.get(cid).restart_count == n and status(mgr, cid) is Status.RUNNING
            ),
        )
        backoffs.append(slot.backoff)
    # Runs shorter than 10 s double the delay from 100 ms.
    assert backoffs == [pytest.approx(0.1), pytest.approx(0.2)]
    env.runtime.exit(cid, 1)
    wait_for("the exit", lambda: status(mgr, cid) is Status.EXITED)
    with slot.lock:
        assert slot.timer is None
    assert mgr.get(cid).restart_count == 2
    assert env.runtime.verbs(cid).count("launch") == 3


def test_on_failure_does_not_restart_a_clean_exit(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr, restart_policy=_policy(RestartPolicyType.ON_FAILURE))
    env.runtime.exit(cid, 0, notify=False)
    assert status(mgr, cid) is Status.EXITED
    assert mgr.registry.get(cid).timer is None


def test_always_restarts_but_not_after_a_manual_stop(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr, restart_policy=_policy(RestartPolicyType.ALWAYS))
    env.runtime.exit(cid, 0)
    wait_for("the restart", lambda: mgr.get(cid).restart_count == 1)
    wait_for("running", lambda: status(mgr, cid) is Status.RUNNING)
    mgr.stop(cid)
    assert status(mgr, cid) is Status.STOPPED
    assert mgr.registry.get(cid).timer is None
    # A manual start resets the counter and the manual-stop mark (Kanto).
    view = mgr.start(cid)
    assert (view.restart_count, view.manually_stopped) == (0, False)


def test_a_restart_that_fails_ends_stopped(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr, restart_policy=_policy(RestartPolicyType.UNLESS_STOPPED))
    env.runtime.fail("launch", RuncError("runc run failed"))
    env.runtime.exit(cid, 2)
    wait_for("the failed restart", lambda: status(mgr, cid) is Status.STOPPED)
    assert mgr.get(cid).state.error == "runc run failed"


def test_remove_cancels_a_pending_restart(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr, restart_policy=_policy(RestartPolicyType.ALWAYS, retry_timeout=60))
    slot = mgr.registry.get(cid)
    slot.backoff = 30.0  # the next delay doubles this: far beyond the test
    slot.run_started = 0.0
    env.runtime.exit(cid, 1, notify=False)
    assert status(mgr, cid) is Status.EXITED
    assert slot.timer is not None
    mgr.remove(cid)
    assert slot.timer is None
    assert env.runtime.verbs(cid).count("launch") == 1


# ---------------------------------------------------------------------- close


def test_close_leaves_containers_running(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr)
    mgr.close()
    assert env.runtime.runs[cid].signals == []
    with pytest.raises(OcirtError) as info:
        mgr.create("busybox", config())
    assert info.value.message == "the container manager is shutting down"
    with pytest.raises(OcirtError):
        mgr.start(cid)


def test_close_can_stop_containers_without_marking_them(env: FakeEnv, mgr: Manager) -> None:
    cid = running(mgr, restart_policy=_policy(RestartPolicyType.UNLESS_STOPPED))
    mgr.close(stop_containers=True)
    assert env.runtime.runs[cid].signals == ["SIGTERM"]
    record = persisted(env, cid).runtime
    assert record.state.status is Status.STOPPED
    assert record.manually_stopped is False


# ---------------------------------------------------------------------- full disk


def test_a_full_disk_never_holds_up_a_stop_and_the_record_follows_later(
    env: FakeEnv, mgr: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    cid = running(mgr)
    other = running(mgr)
    store = mgr.registry.store
    real_save = store.save
    full = [True]

    def save(stored: StoredContainer, *args: object, **kwargs: object) -> None:
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(stored, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "save", save)
    view = mgr.stop(cid)
    assert view.state.status is Status.STOPPED
    assert "kill" in env.runtime.verbs(cid)
    # On disk, the record from before; what has not happened yet is refused.
    assert persisted(env, cid).runtime.state.status is Status.RUNNING
    with pytest.raises(OSError):
        mgr.rename(cid, "renamed")
    assert mgr.get(cid).name == cid
    full[0] = False
    mgr.supervisor.sweep()
    wait_for("the record", lambda: persisted(env, cid).runtime.state.status is Status.STOPPED)
    assert persisted(env, cid).runtime.manually_stopped
    # Removal needs no space either; a create does.
    full[0] = True
    mgr.remove(other, force=True)
    with pytest.raises(OSError):
        mgr.create("busybox", config())
    assert not (env.base / "home" / "containers" / other).exists()


def test_list_does_not_wait_for_a_create_that_is_pulling(
    env: FakeEnv, mgr: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A create holds its container's lock through the pull; list() (and with it every
    # lookup by name, and the twin's republish) must not wait for that pull to end.
    import threading

    running = mgr.create("busybox", config(), name="running")
    pulling, release = threading.Event(), threading.Event()
    prepare = mgr.rootfs.prepare

    def slow_prepare(*args: object, **kwargs: object) -> object:
        pulling.set()
        release.wait(30)
        return prepare(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mgr.rootfs, "prepare", slow_prepare)
    creator = threading.Thread(target=lambda: mgr.create("busybox", config(), name="slow"))
    creator.start()
    try:
        assert pulling.wait(10)
        listed: list[list[str]] = []
        lister = threading.Thread(target=lambda: listed.append([v.name for v in mgr.list()]))
        lister.start()
        lister.join(5)
        # The container still being created is not listed yet; the others are, at once.
        assert listed == [["running"]]
    finally:
        release.set()
        creator.join(30)
    assert sorted(v.name for v in mgr.list()) == ["running", "slow"]
    assert mgr.get(running.id).name == "running"
