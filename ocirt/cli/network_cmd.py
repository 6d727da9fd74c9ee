"""`ocirt network prune`: remove the bridge a stopped daemon left, and its firewall rules.

It works without the daemon (which must be stopped: it would set the bridge up again) and
reads the daemon's config to find the bridge (`network.default_bridge.name`, kanto-cm0 by
default) and its state (`manager.home_dir`). Kanto's flags for those keys override the
file, as they do for `ocirt daemon`.
"""

from __future__ import annotations

import argparse
import sys

HELP = "manage the bridge network: prune removes the bridge and its rules"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="network_command", required=True)
    prune = sub.add_parser(
        "prune",
        help="remove the bridge and its nftables/iptables rules (no container may use it)",
        description="Remove the daemon's bridge and its nftables/iptables rules. Refused "
        "while the daemon runs or a container is attached to the bridge.",
    )
    prune.add_argument(
        "--config",
        "--cfg-file",
        dest="config",
        default=None,
        help="the daemon's config.json (default: /etc/container-management/config.json)",
    )
    prune.add_argument("--net-br-name", default=None, help="bridge name (the config's)")
    prune.add_argument("--cm-home-dir", default=None, help="manager.home_dir (the config's)")
    prune.add_argument(
        "--cm-exec-root-dir", default=None, help="manager.exec_root_dir (the config's)"
    )


def _daemon_answers(socket_path: str) -> bool:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(socket_path)
        except OSError:
            return False
    return True


def _prune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ocirt.daemon.localapi import SOCKET_NAME
    from ocirt.daemon.main import load_config_file
    from ocirt.errors import FailedPrecondition
    from ocirt.network.prune import prune_bridge

    overrides: dict[tuple[str, ...], object] = {}
    for value, path in (
        (args.net_br_name, ("network", "default_bridge", "name")),
        (args.cm_home_dir, ("manager", "home_dir")),
        (args.cm_exec_root_dir, ("manager", "exec_root_dir")),
    ):
        if value is not None:
            overrides[path] = value
    config = load_config_file(args.config, overrides)
    name = config.network.default_bridge.name
    socket_path = Path(config.manager.exec_root_dir) / SOCKET_NAME
    if _daemon_answers(str(socket_path)):
        raise FailedPrecondition(
            f"the ocirt daemon is running ({socket_path} answers): stop it first, "
            f"or it sets bridge {name} up again"
        )
    report = prune_bridge(name, Path(config.manager.home_dir) / "network")
    firewalls = ", ".join(b.value for b in report.firewalls) or "no firewall"
    if report.bridge_removed:
        print(f"removed bridge {name}; no rules of it are left ({firewalls})")
    else:
        print(f"bridge {name} does not exist; no rules of it are left ({firewalls})")
    return 0


def run(args: argparse.Namespace) -> int:
    from ocirt.errors import OcirtError

    try:
        return _prune(args)
    except OcirtError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
