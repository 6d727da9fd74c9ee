"""`ocirt daemon`: run the container manager service (Kanto's config file format)."""

from __future__ import annotations

import argparse
import sys

HELP = "Run the ocirt daemon (container manager, Ditto/MQTT front end, local API)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "--cfg-file",
        dest="config",
        default=None,
        help="Kanto config.json (default: /etc/container-management/config.json if present)",
    )
    parser.add_argument(
        "--stop-containers-on-exit",
        action="store_true",
        help="stop every container when the daemon stops (Kanto's behaviour)",
    )
    parser.add_argument(
        "--cgroup-parent",
        default="ocirt",
        help="cgroup of the containers, relative to the daemon's own (default: ocirt)",
    )


def run(args: argparse.Namespace) -> int:
    from ocirt.daemon.main import run_daemon
    from ocirt.errors import OcirtError

    try:
        return run_daemon(args.config, args.stop_containers_on_exit, args.cgroup_parent)
    except OcirtError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
