"""Two installed trees side by side on the daemon's create+start path (#17 item 2): each
tree's `ocirt daemon` with its own broker, and `runc run -d` of the same bundle, in
interleaved rounds (the order rotates every round and flips every other), so that a
change is measured against the tree before it in the same minutes. Needs root.

Usage: python3 bench/create_path_ab.py ROUNDS PYTHON_A PYTHON_B

PYTHON_A and PYTHON_B are the interpreters of two venvs, each with its tree installed
(`pip install .` plus paho-mqtt and pytest); run it with either, from outside the
repository, as bench/create_path.py (whose helpers it uses). The brokers set
TCP_NODELAY (bench/create_path.py says why).

Printed: the medians of each tree's createWithConfig start:true round trip and of the
baseline, each tree's median of per-round ratios to the baseline, and the median of the
per-round differences B - A (negative: B is faster).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO))
sys.path.append(str(REPO / "tests" / "integration" / "things"))
sys.path.append(str(REPO / "bench"))

from create_path import create_started, raw_run, remove, remove_cgroup_dirs  # noqa: E402
from service_harness import Broker, Cloud, Service, build_layout  # noqa: E402

PAUSE = 0.25


def start_daemon(base: Path, layout: Path, python: str) -> tuple[Broker, Service, Cloud]:
    base.mkdir()
    broker = Broker(base, nodelay=True)
    broker.start()
    service = Service(base, broker.port, layout)
    service.cgroup_parent = f"ocirt-bench-{uuid.uuid4().hex[:8]}"
    # The harness starts the daemon with sys.executable: this tree's interpreter.
    own, sys.executable = sys.executable, python
    try:
        service.start()
    finally:
        sys.executable = own
    cloud = Cloud(broker.port, f"bench:gw{uuid.uuid4().hex[:6]}")
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    return broker, service, cloud


def main(rounds: int, pythons: dict[str, str]) -> None:
    trips: dict[str, list[float]] = {"A": [], "B": [], "raw": []}
    started: dict[str, tuple[Broker, Service, Cloud]] = {}
    with tempfile.TemporaryDirectory(prefix="ocirt-bench-") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([str(REPO / "hack" / "mkrootfs.sh"), str(tmp / "rootfs")], check=True,
                       capture_output=True)  # fmt: skip
        layout = build_layout(tmp / "rootfs", tmp / "layout")
        try:
            for tree, python in pythons.items():
                started[tree] = start_daemon(tmp / tree, layout, python)
            clouds = {tree: parts[2] for tree, parts in started.items()}
            # The baseline's bundle: a stopped container of tree A.
            kept, _ = create_started(clouds["A"])
            assert clouds["A"].call("stop", f"Container:{kept}", {}).body["status"] == 204
            bundle = started["A"][1].home / "containers" / kept / "bundle"
            runc_root = tmp / "raw-runc"
            runc_root.mkdir()
            for cloud in clouds.values():  # not counted: the first create probes overlayfs
                remove(cloud, create_started(cloud)[0])
            order = ["A", "B", "raw"]
            for index in range(rounds):
                turn = order[index % 3 :] + order[: index % 3]
                if index % 2:
                    turn.reverse()
                for which in turn:
                    time.sleep(PAUSE)
                    if which == "raw":
                        trips["raw"].append(raw_run(bundle, runc_root))
                        continue
                    cid, elapsed = create_started(clouds[which])
                    trips[which].append(elapsed)
                    time.sleep(PAUSE)  # its events leave after the answer
                    remove(clouds[which], cid)
            remove(clouds["A"], kept)
        finally:
            for broker, service, cloud in started.values():
                cloud.close()
                service.cleanup()
                remove_cgroup_dirs(service.cgroup_parent)
                broker.stop()
    raw = trips["raw"]
    print(f"rounds: {rounds} (interleaved); A = {pythons['A']}, B = {pythons['B']}")
    print(f"runc run -d of the same bundle (median): {statistics.median(raw) * 1000:.1f} ms")
    for tree in ("A", "B"):
        ratio = statistics.median(t / r for t, r in zip(trips[tree], raw, strict=True))
        print(
            f"{tree}: round trip (median) {statistics.median(trips[tree]) * 1000:.1f} ms,"
            f" median of per-round ratios {ratio:.2f}x"
        )
    delta = statistics.median(b - a for a, b in zip(trips["A"], trips["B"], strict=True))
    print(f"B - A, median of per-round differences: {delta * 1000:+.1f} ms")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(int(sys.argv[1]), {"A": sys.argv[2], "B": sys.argv[3]})
