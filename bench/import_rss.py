#!/usr/bin/env python3
"""Peak RSS of importing each heavy module the daemon uses, each in a fresh interpreter.

Baseline: the same interpreter importing nothing, in the same run. Shows where the
daemon's resident memory comes from (docs/performance.md, "Service").

Usage: python3 bench/import_rss.py
It measures the ocirt its interpreter imports (each probe runs in `python3 -P`, never
from the source tree); a device's install is `pip install .`:
    python3 -m venv /tmp/v && /tmp/v/bin/pip install /path/to/repo
    cd /tmp && /tmp/v/bin/python /path/to/repo/bench/import_rss.py
"""

from __future__ import annotations

import subprocess
import sys

import benchlib

MODULES = [
    "",  # baseline: python3 alone
    "ocirt.cli.main",
    "ocirt.manager.manager",
    "ocirt.daemon.main",
    "ssl",
    "paho.mqtt.client",
    # As the daemon imports it: paho with ssl/hashlib/urllib.request deferred first.
    "deferred:ocirt.things.mqtt",
    "ocirt.network.netlink",
    "ocirt.image.service",  # what a pull of a plain image loads
    "ocirt.image.ocicrypt.layer",  # what the first encrypted layer adds (service.ocicrypt)
    "pyroute2",  # what ocirt.network.netlink replaced; printed only if installed
    "iptc",
    "cryptography.hazmat.primitives.ciphers",
]

# VmHWM, the peak of this process's own memory: getrusage's ru_maxrss would also keep the
# peak of the process it was forked from (Linux carries it over exec), i.e. this bench's.
PROBE = """
import importlib, sys
name = sys.argv[1]
if name.startswith("deferred:"):
    # What the daemon's composition root does before it imports the MQTT adapter.
    from ocirt import deferred
    deferred.defer(*deferred.PAHO_RARELY_USED)
    name = name.removeprefix("deferred:")
if name:
    importlib.import_module(name)
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


def peak_kib(module: str) -> int | None:
    """Peak RSS in KiB, or None when the module is not installed."""
    out = subprocess.run(
        [sys.executable, "-P", "-c", PROBE, module], capture_output=True, text=True
    )
    if out.returncode != 0:
        if "ModuleNotFoundError" in out.stderr:
            return None
        raise RuntimeError(out.stderr)
    return int(out.stdout.strip())


def main() -> None:
    base = peak_kib("")
    assert base is not None
    print(benchlib.describe())
    print(f"{'module':45} {'peak RSS':>10} {'over python3':>13}")
    for module in MODULES:
        kib = peak_kib(module)
        if kib is None:
            print(f"{module:45} (not installed)")
            continue
        print(
            f"{module or '(python3 alone)':45} {kib / 1024:8.1f} MB {(kib - base) / 1024:+10.1f} MB"
        )


if __name__ == "__main__":
    main()
