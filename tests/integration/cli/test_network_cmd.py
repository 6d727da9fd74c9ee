"""`ocirt network prune` on a real daemon's uniquely named bridge: refused while the daemon
runs or a container is attached, then the bridge and every rule of it are gone, and the
next daemon start sets them up again."""

from __future__ import annotations

import subprocess
import sys

import pytest
from service_harness import IMAGE, Service, in_container

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def prune(service: Service) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocirt.cli.main", "network", "prune",
         "--config", str(service.config_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def link_exists(name: str) -> bool:
    done = subprocess.run(["ip", "link", "show", name], capture_output=True, check=False)
    return done.returncode == 0


def rules_naming(bridge: str) -> list[str]:
    """Lines of the host's firewall (both backends) that name the bridge."""
    lines: list[str] = []
    for argv in (["nft", "list", "ruleset"], ["iptables-save"], ["iptables-legacy-save"]):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
        except FileNotFoundError:
            continue
        lines += [line for line in out.splitlines() if bridge in line]
    return lines


def test_prune_removes_the_bridge_and_its_rules_only_when_unused(service: Service) -> None:
    service.start()
    done = service.cli("create", "-n", "web", "--ports", "18080:80", "--start", IMAGE, *SERVE)
    assert done.returncode == 0, done.stderr
    cid = done.stdout.strip()
    assert link_exists(service.bridge)
    assert rules_naming(service.bridge)

    running = prune(service)
    assert running.returncode == 1
    assert running.stderr == (
        f"Error: the ocirt daemon is running ({service.socket} answers): stop it first, "
        f"or it sets bridge {service.bridge} up again\n"
    )

    # The daemon stops; its container runs on, attached (docs/kanto-compatibility.md decision 10).
    assert service.stop() == 0
    attached = prune(service)
    assert attached.returncode == 1
    assert attached.stderr.startswith(
        f"Error: bridge {service.bridge} is in use by container {cid}"
    ), attached.stderr
    assert in_container(service, cid, "echo", "still attached").strip() == "still attached"
    assert link_exists(service.bridge)

    service.start()
    assert service.cli("stop", "web").returncode == 0
    assert service.stop() == 0
    pruned = prune(service)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith(f"removed bridge {service.bridge}; no rules of it are left")
    assert not link_exists(service.bridge)
    assert rules_naming(service.bridge) == []
    again = prune(service)
    assert again.returncode == 0
    assert again.stdout.startswith(f"bridge {service.bridge} does not exist")

    # The next start sets the network up again, and the stopped container runs on it.
    service.start()
    assert link_exists(service.bridge)
    assert service.cli("start", "web").returncode == 0
    assert in_container(service, cid, "echo", "back").strip() == "back"
