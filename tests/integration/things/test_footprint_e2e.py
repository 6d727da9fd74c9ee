"""What an idle daemon on plain MQTT keeps out of memory (docs/performance.md, Service):
no OpenSSL, no pyroute2. These are the ~25 MB the RSS figure is about; the libraries
load when a feature needs them (TLS, a pull, a digest), never before."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_harness import IMAGE, Cloud, Service, state_updates

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def mapped_libraries(pid: int) -> set[str]:
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6:
            found.add(Path(fields[5]).name)
    return found


def test_idle_connected_daemon_maps_no_openssl(service: Service, cloud: Cloud) -> None:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    assert service.proc is not None
    libraries = mapped_libraries(service.proc.pid)
    assert not [name for name in libraries if name.startswith(("libssl", "libcrypto"))]
    assert not [name for name in libraries if name.startswith("_sqlite3")]  # pyroute2's ndb

    # Creating and serving a container of a present image on the bridge (netns, veth,
    # firewall) still needs none of them.
    value = {"imageRef": IMAGE, "start": True, "config": {"cmd": SERVE}}
    cid = cloud.call("createWithConfig", "ContainerFactory", value).body["value"]
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: "RUNNING" in state_updates(t, cid))
    libraries = mapped_libraries(service.proc.pid)
    assert not [name for name in libraries if name.startswith(("libssl", "libcrypto", "_sqlite3"))]
    assert cloud.call("remove", f"Container:{cid}", True).body["status"] == 204
