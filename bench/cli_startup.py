#!/usr/bin/env python3
"""Wall time of `ocirt list` through the console script pip installed, against a bare
`python -c pass` of the same interpreter, in the same run (issue 17, item 1: target
<= 2.5x).

The daemon is a stub: a unix socket served by this script that answers `list` with the
daemon's answer for 1 or for 50 containers (the shape of ocirt.daemon.localapi.view_json,
one JSON line, as the daemon writes it). The stub isolates the CLI's own cost; what the
daemon spends on a list is measured by the daemon's benches. Rounds are interleaved
(pass, list-1, list-50, in a rotating order); the figures are medians.

Usage: python3 bench/cli_startup.py [--rounds N] [--ocirt PATH]...
(default PATH: the `ocirt` script next to this interpreter, else on $PATH; several
scripts, e.g. an older ocirt's, are timed in the same interleaved rounds).

An editable install (hack/setup.sh) runs setuptools' finder from a .pth file at every
start-up, in the baseline too, which flatters the ratio; a regular install is what a
device has:
    .venv/bin/pip wheel --no-deps -w /tmp/whl . && /usr/bin/python3 -m venv /tmp/v
    /tmp/v/bin/pip install --no-deps /tmp/whl/ocirt-*.whl
    python3 bench/cli_startup.py --ocirt /tmp/v/bin/ocirt
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path


def container(index: int) -> dict[str, object]:
    """One container as the daemon's `list` answers it (a running busybox, Ditto form)."""
    return {
        "id": str(uuid.UUID(int=index + 1)),
        "name": f"ctr-{index}",
        "imageRef": "docker.io/library/busybox:latest",
        "config": {
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cmd": ["sleep", "3600"],
            "networkMode": "BRIDGE",
            "restartPolicy": {"type": "UNLESS_STOPPED"},
            "log": {"type": "JSON_FILE", "maxFiles": 2, "maxSize": "100M", "mode": "BLOCKING"},
            "hostName": f"ctr-{index}",
        },
        "createdAt": "2026-12-03T10:00:00.123456789Z",
        "state": {"status": "RUNNING", "pid": 4000 + index, "startedAt": "2026-12-03T10:00:01Z"},
        "restartCount": 0,
    }


class StubDaemon:
    """Answers every request on `path` with `{"ok": true, "result": [N containers]}`."""

    def __init__(self, path: Path, count: int) -> None:
        self.answer = json.dumps({"ok": True, "result": [container(i) for i in range(count)]})
        self.answer_bytes = self.answer.encode() + b"\n"
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as reader:
                request = json.loads(reader.readline())
                assert request["op"] == "list", request
                conn.sendall(self.answer_bytes)

    def close(self) -> None:
        self.server.close()


def timed(argv: list[str], socket_path: Path | None = None) -> float:
    env = dict(os.environ)
    if socket_path is not None:
        # $OCIRT_SOCKET rather than --host: older ocirt scripts take it as well.
        env["OCIRT_SOCKET"] = str(socket_path)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.decode()}")
    return elapsed


def find_script(given: str | None) -> Path:
    if given:
        return Path(given)
    beside = Path(sys.executable).parent / "ocirt"
    if beside.exists():
        return beside
    found = shutil.which("ocirt")
    if found is None:
        sys.exit("no ocirt script: pip install ocirt, or give --ocirt PATH")
    return Path(found)


def describe(script: Path) -> str:
    """The script's interpreter, printed with what the script imports and whether the
    install is editable."""
    interpreter = script.read_text().splitlines()[0].removeprefix("#!").strip()
    sites = subprocess.run(
        [interpreter, "-c", "import site; print('\\n'.join(site.getsitepackages()))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    editable = any(
        name.startswith("__editable__") and name.endswith(".pth")
        for entry in sites
        for name in (os.listdir(entry) if os.path.isdir(entry) else [])
    )
    imports = [
        line for line in script.read_text().splitlines() if line.startswith(("import", "from"))
    ]
    print(f"script: {script} (interpreter {interpreter}, editable install: {editable})")
    print(f"  the script's imports: {imports}")
    return interpreter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument(
        "--ocirt", action="append", default=[], help="a console script to time (repeatable)"
    )
    options = parser.parse_args()
    scripts = [find_script(given) for given in options.ocirt or [None]]

    with tempfile.TemporaryDirectory() as tmp:
        one, fifty = Path(tmp) / "one.sock", Path(tmp) / "fifty.sock"
        stubs = [StubDaemon(one, 1), StubDaemon(fifty, 50)]
        # name -> (argv, socket, the name of its baseline)
        cases: dict[str, tuple[list[str], Path | None, str]] = {}
        for number, script in enumerate(scripts, 1):
            interpreter = describe(script)
            base = f"[{number}] python -c pass"
            cases[base] = ([interpreter, "-c", "pass"], None, base)
            cases[f"[{number}] ocirt list (1)"] = ([str(script), "list"], one, base)
            cases[f"[{number}] ocirt list (50)"] = ([str(script), "list"], fifty, base)
        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for name in names:  # warm the page cache
            timed(*cases[name][:2])
        for round_ in range(options.rounds):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(timed(*cases[name][:2]))
        for stub in stubs:
            stub.close()

    print(f"{options.rounds} interleaved rounds, medians ([n]: the n-th script above):")
    for name in names:
        median = statistics.median(times[name])
        base = statistics.median(times[cases[name][2]])
        print(f"  {name:20} {median * 1000:7.1f} ms  {median / base:5.2f}x python -c pass")


if __name__ == "__main__":
    main()
