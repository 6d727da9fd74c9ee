"""A manager in its own process, for the crash tests (not a test module).

Usage: python manager_proc.py HOME EXEC_ROOT RUNC_ROOT ROOTFS STEPS_JSON CGROUP_PARENT

Runs the steps, printing one JSON line per finished step, then holds (sleeps) until
killed when the last step is "hold", or closes the manager (containers keep running).
Steps: ["create", name, [cmd...], policy[:max retries], [env...]], ["start", name],
["stop", name], ["remove", name], ["hold"]. With OCIRT_TEST_CRASH_AT set, the manager
SIGKILLs itself at that step (ocirt.manager.faults).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ocirt.config.model import ContainerConfig, NetworkMode, RestartPolicy, RestartPolicyType
from ocirt.daemon.adapters import DirectoryRootfs, HostNetwork
from ocirt.manager.manager import Manager, ManagerSettings
from ocirt.manager.types import StopOptions
from ocirt.runtime.hostfacts import read_host_facts
from ocirt.runtime.monitored import MonitoredRunc
from ocirt.store.containers import ContainerStore


def main() -> None:
    home, exec_root, runc_root, rootfs, steps, cgroup_parent = sys.argv[1:7]
    settings = ManagerSettings(
        home_dir=Path(home),
        exec_root=Path(exec_root),
        runtime_root=Path(runc_root),
        cgroup_parent=cgroup_parent,
    )
    runtime = MonitoredRunc(
        settings.runc_root, settings.runtime, notify_socket=settings.notify_socket
    )
    mgr = Manager(
        settings,
        DirectoryRootfs(Path(rootfs)),
        HostNetwork(),
        read_host_facts(),
        runtime=runtime,
        store=ContainerStore(settings.home_dir),
    )
    mgr.recover()
    ids: dict[str, str] = {}
    for step in json.loads(steps):
        verb = step[0]
        if verb == "create":
            _, name, cmd, policy, env = step
            kind, _, retries = policy.partition(":")
            config = ContainerConfig(
                network_mode=NetworkMode.HOST,
                cmd=tuple(cmd),
                env=tuple(env),
                restart_policy=RestartPolicy(RestartPolicyType(kind), int(retries or 0)),
            )
            ids[name] = mgr.create("busybox", config, name=name).id
        elif verb == "start":
            mgr.start(ids[step[1]])
        elif verb == "stop":
            mgr.stop(ids[step[1]], StopOptions(timeout=10))
        elif verb == "remove":
            mgr.remove(ids[step[1]], force=True)
        elif verb == "hold":
            print(json.dumps({"step": "hold", "ids": ids}), flush=True)
            while True:
                time.sleep(3600)
        print(json.dumps({"step": verb, "ids": ids}), flush=True)
    mgr.close()


if __name__ == "__main__":
    main()
