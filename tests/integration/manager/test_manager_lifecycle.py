"""The manager's use cases on real runc containers: every operation in every state,
Kanto's messages, Kanto's event order, and what the container itself sees."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ocirt.config.ditto import parse_update
from ocirt.config.model import LogConfig, Resources, RestartPolicyType
from ocirt.config.state import Operation, Status
from ocirt.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from ocirt.errors import ValidationError as ConfigError
from ocirt.manager.manager import Manager
from ocirt.manager.types import StopOptions
from ocirt.things.protocol import DittoError
from tests.support.env import Env
from tests.support.recorder import Recorder
from tests.support.waiting import wait_for

from .manager_support import SERVE, cfg, status_of

pytestmark = pytest.mark.integration

REACHABLE = [Status.CREATED, Status.RUNNING, Status.PAUSED, Status.STOPPED, Status.EXITED]


def _in_state(mgr: Manager, env: Env, status: Status) -> str:
    cid = mgr.create("busybox", cfg()).id
    if status is Status.CREATED:
        return cid
    mgr.start(cid)
    if status is Status.PAUSED:
        mgr.pause(cid)
    elif status is Status.STOPPED:
        mgr.stop(cid)
    elif status is Status.EXITED:
        # Killed from outside: an exit, not a stop.
        subprocess.run(["runc", "--root", str(env.runc_root), "kill", cid, "KILL"], check=True)
        wait_for("the exit", lambda: status_of(mgr, cid) == "EXITED")
    assert mgr.get(cid).state.status is status
    return cid


OPS = {
    Operation.START: lambda m, c: m.start(c),
    Operation.STOP: lambda m, c: m.stop(c, StopOptions(timeout=10)),
    Operation.PAUSE: lambda m, c: m.pause(c),
    Operation.RESUME: lambda m, c: m.resume(c),
    Operation.REMOVE: lambda m, c: m.remove(c, force=False),
    Operation.REMOVE_FORCE: lambda m, c: m.remove(c, force=True),
}
AFTER = {
    Operation.START: Status.RUNNING,
    Operation.STOP: Status.STOPPED,
    Operation.PAUSE: Status.PAUSED,
    Operation.RESUME: Status.RUNNING,
}


# Kanto's refusals, written out (docs/kanto-compatibility.md §2): Go title-case states, and the
# trailing space of the resume message.
REFUSALS = {
    (Operation.START, Status.RUNNING): "the container with id = {cid} is already running",
    (Operation.START, Status.PAUSED): (
        "the container with id = {cid} is paused - cannot start it - try unpausing it instead"
    ),
    **{
        (
            Operation.STOP,
            s,
        ): f"cannot perform stop operation for container: {{cid}}, with state: {t}"
        for s, t in [
            (Status.CREATED, "Created"),
            (Status.STOPPED, "Stopped"),
            (Status.EXITED, "Exited"),
        ]
    },
    **{
        (Operation.PAUSE, s): f"container with id = {{cid}} is not running - current status is {t}"
        for s, t in [
            (Status.CREATED, "Created"),
            (Status.PAUSED, "Paused"),
            (Status.STOPPED, "Stopped"),
            (Status.EXITED, "Exited"),
        ]
    },
    **{
        (Operation.RESUME, s): "container id = {cid} is not paused - cannot unpause it "
        for s in (Status.CREATED, Status.RUNNING, Status.STOPPED, Status.EXITED)
    },
    **{
        (Operation.REMOVE, s): (
            "container with id = {cid} is not stopped - must set the force flag to true "
            "to remove it"
        )
        for s in (Status.RUNNING, Status.PAUSED)
    },
}


@pytest.mark.parametrize("operation", list(OPS))
@pytest.mark.parametrize("status", REACHABLE)
def test_every_operation_in_every_state(
    env: Env, mgr: Manager, status: Status, operation: Operation
) -> None:
    cid = _in_state(mgr, env, status)
    expected = REFUSALS.get((operation, status))
    if expected is not None:
        with pytest.raises(FailedPrecondition) as info:
            OPS[operation](mgr, cid)
        assert info.value.message == expected.format(cid=cid)
        assert DittoError.from_exception(info.value).to_value()["status"] == 500
        assert mgr.get(cid).state.status is status
        return
    OPS[operation](mgr, cid)
    if operation in (Operation.REMOVE, Operation.REMOVE_FORCE):
        with pytest.raises(NotFound, match=f"no such container with id = {cid} exists"):
            mgr.get(cid)
        assert cid not in env.runc_ids()
        assert not (env.home / "containers" / cid).exists()
        return
    assert mgr.get(cid).state.status is AFTER[operation]
    runc_status = {
        Status.RUNNING: "running",
        Status.PAUSED: "paused",
    }.get(AFTER[operation])
    if runc_status is None:
        assert cid not in env.runc_ids()
    else:
        assert env.runc_state(cid)["status"] == runc_status


def test_kanto_messages_for_the_common_mistakes(env: Env, mgr: Manager) -> None:
    cid = mgr.create("busybox", cfg()).id
    with pytest.raises(FailedPrecondition) as info:
        mgr.stop(cid)
    assert info.value.message == (
        f"cannot perform stop operation for container: {cid}, with state: Created"
    )
    mgr.start(cid)
    with pytest.raises(FailedPrecondition) as info:
        mgr.start(cid)
    assert info.value.message == f"the container with id = {cid} is already running"
    with pytest.raises(FailedPrecondition) as info:
        mgr.remove(cid)
    assert info.value.message == (
        f"container with id = {cid} is not stopped - must set the force flag to true to remove it"
    )
    with pytest.raises(NotFound) as missing:
        mgr.start("nope")
    assert missing.value.message == "no such container with id = nope exists"


def test_events_in_kantos_order(env: Env, mgr: Manager, events: Recorder) -> None:
    cid = mgr.create("busybox", cfg(), name="ordered").id
    mgr.start(cid)
    mgr.pause(cid)
    mgr.resume(cid)
    mgr.stop(cid)
    mgr.rename(cid, "renamed")
    mgr.update(cid, parse_update({"restartPolicy": {"type": "ALWAYS"}}))
    mgr.remove(cid)
    assert events.wait(cid, 10) == [
        ("created", "CREATED"),
        ("state", "CREATED"),
        ("state", "RUNNING"),
        ("state", "PAUSED"),
        ("state", "RUNNING"),
        ("state", "STOPPED"),
        ("renamed", "STOPPED"),
        ("updated", "STOPPED"),
        ("state", "DEAD"),
        ("removed", "DEAD"),
    ]
    by_kind = {e.kind.value: e.container for e in events.events if e.container.id == cid}
    assert by_kind["renamed"].name == "renamed"
    assert by_kind["updated"].config.restart_policy.type is RestartPolicyType.ALWAYS


def test_the_container_runs_its_config(env: Env, mgr: Manager) -> None:
    view = mgr.create(
        "busybox", cfg(*SERVE, env=("GREETING=hi",), host_name="ignored-in-host-mode"), name="web"
    )
    assert view.config.domain_name == "web-domain"
    mgr.start(view.id)
    running = mgr.get(view.id)
    assert running.state.pid > 0
    assert running.state.started_at.endswith("Z")
    assert running.started_successfully_before
    assert env.exec(view.id, "sh", "-c", "echo $GREETING").strip() == "hi"
    # The pid the manager reports is the container's init as the host sees it.
    cmdline = Path(f"/proc/{running.state.pid}/cmdline").read_bytes()
    assert b"trap" in cmdline


def test_stop_validation_and_force(env: Env, mgr: Manager) -> None:
    cid = mgr.create("busybox", cfg("sleep", "1000")).id
    mgr.start(cid)
    with pytest.raises(InvalidArgument) as info:
        mgr.stop(cid, StopOptions(timeout=-1))
    assert info.value.message == "the timeout = -1 shouldn't be negative"
    with pytest.raises(InvalidArgument) as info:
        mgr.stop(cid, StopOptions(signal="SIGNOPE"))
    assert info.value.message == "invalid signal = SIGNOPE"
    with pytest.raises(InvalidArgument):
        mgr.stop(cid, StopOptions(signal="256"))
    # sleep as PID 1 ignores SIGTERM: without force the stop fails with Kanto's error...
    with pytest.raises(FailedPrecondition) as info:
        mgr.stop(cid, StopOptions(signal="SIGTERM", timeout=0.5, force=False))
    assert info.value.message == f"could not stop container with ID = {cid} with SIGTERM"
    assert mgr.get(cid).state.status is Status.RUNNING
    assert not mgr.get(cid).manually_stopped
    # ...and a plain stop always ends it, with SIGKILL (docs/kanto-compatibility.md decision 11).
    mgr.stop(cid, StopOptions(timeout=0.5))
    stopped = mgr.get(cid)
    assert stopped.state.status is Status.STOPPED
    assert stopped.state.exit_code == 137
    assert stopped.manually_stopped


def test_stop_with_a_signal_the_container_handles(env: Env, mgr: Manager) -> None:
    cid = mgr.create(
        "busybox", cfg("sh", "-c", "trap 'exit 7' INT; while true; do sleep 0.05; done")
    ).id
    mgr.start(cid)
    mgr.stop(cid, StopOptions(signal="SIGINT", timeout=10, force=False))
    assert mgr.get(cid).state.exit_code == 7
    mgr.start(cid)
    mgr.stop(cid, StopOptions(signal="2", timeout=10, force=False))
    assert mgr.get(cid).state.exit_code == 7


def test_stop_of_a_paused_container(env: Env, mgr: Manager) -> None:
    cid = mgr.create("busybox", cfg()).id
    mgr.start(cid)
    mgr.pause(cid)
    mgr.stop(cid, StopOptions(timeout=10, force=False))
    assert mgr.get(cid).state.status is Status.STOPPED
    assert mgr.get(cid).state.exit_code == 0


def test_names_are_unique_and_checked(env: Env, mgr: Manager, events: Recorder) -> None:
    first = mgr.create("busybox", cfg(), name="alpha").id
    second = mgr.create("busybox", cfg(), name="beta").id
    with pytest.raises(AlreadyExists):
        mgr.create("busybox", cfg(), name="alpha")
    with pytest.raises(AlreadyExists):
        mgr.rename(second, "alpha")
    with pytest.raises(ConfigError) as info:
        mgr.rename(second, "bad name")
    assert info.value.message == "invalid container name format : bad name"
    # Same or empty name: a no-op without an event.
    mgr.rename(first, "alpha")
    mgr.rename(first, "")
    mgr.rename(first, "gamma")
    assert mgr.get(first).name == "gamma"
    assert events.wait(first, 3) == [
        ("created", "CREATED"),
        ("state", "CREATED"),
        ("renamed", "CREATED"),
    ]
    assert len(mgr.list()) == 2
    # Persisted: a new manager sees the new name.
    assert {v.name for v in env.manager().list()} == {"gamma", "beta"}


def test_update_memory_applies_live(env: Env, mgr: Manager) -> None:
    cid = mgr.create("busybox", cfg(resources=Resources(memory="64M", memory_swap="-1"))).id
    mgr.start(cid)
    limit = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert int(env.exec(cid, "cat", limit)) == 64 * 1024 * 1024
    mgr.update(cid, parse_update({"resources": {"memory": "32M"}}))
    assert int(env.exec(cid, "cat", limit)) == 32 * 1024 * 1024
    assert mgr.get(cid).config.resources.memory == "32M"
    assert mgr.get(cid).config.resources.memory_swap == "64M"
    # resources:{} removes the limits.
    mgr.update(cid, parse_update({"resources": {}}))
    assert int(env.exec(cid, "cat", limit)) > 1 << 40


def test_failed_start_ends_stopped_with_the_error(env: Env, mgr: Manager, events: Recorder) -> None:
    cid = mgr.create("busybox", cfg("/no/such/binary")).id
    with pytest.raises(Exception) as info:
        mgr.start(cid)
    view = mgr.get(cid)
    assert view.state.status is Status.STOPPED
    assert "/no/such/binary" in view.state.error
    assert "/no/such/binary" in str(info.value)
    assert cid not in env.runc_ids()
    assert events.wait(cid, 3)[-1] == ("state", "STOPPED")


def test_remove_force_of_a_running_container(env: Env, mgr: Manager, events: Recorder) -> None:
    root = Path(env.home) / "logs"
    cid = mgr.create("busybox", cfg(log=LogConfig(root_dir=str(root)))).id
    mgr.start(cid)
    assert (root / cid / "json.log").exists()
    mgr.remove(cid, force=True)
    assert events.wait(cid, 5)[-2:] == [("state", "DEAD"), ("removed", "DEAD")]
    assert cid not in env.runc_ids()
    assert not (root / cid).exists()
    assert env.monitor_pids() == []
