"""Broker restart: the daemon reconnects, bootstraps again and republishes its features."""

from __future__ import annotations

import json

import pytest
from service_harness import IMAGE, Broker, Cloud, Service, state_updates

pytestmark = pytest.mark.integration

SERVE = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"]


def test_broker_restart_bootstraps_and_republishes(
    service: Service, cloud: Cloud, broker: Broker
) -> None:
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    value = {"imageRef": IMAGE, "start": True, "config": {"cmd": SERVE}}
    cid = cloud.call("createWithConfig", "ContainerFactory", value).body["value"]
    path = f"/features/Container:{cid}"
    cloud.wait_twin(path, lambda t: "RUNNING" in state_updates(t, cid))
    assert cloud.bootstraps == 1

    broker.stop()
    cloud.messages.clear()
    broker.start()
    cloud.wait_for(lambda: cloud.bootstraps >= 2, "a second bootstrap")
    cloud.wait_twin(path, lambda t: any(p == path for _, p, _ in t))
    republished = [v for a, p, v in cloud.twin(path) if p == path]
    assert republished[-1]["properties"]["status"]["state"]["status"] == "RUNNING"
    assert ("modify", "/features/ContainerFactory") in [
        (a, p) for a, p, _ in cloud.twin("/features/ContainerFactory")
    ]
    # Commands flow again on the new connection.
    got = cloud.call("stop", f"Container:{cid}", {})
    assert got.body["status"] == 204
    cloud.wait_twin(path, lambda t: "STOPPED" in state_updates(t, cid))


def test_identity_arriving_late_is_picked_up(service: Service, broker: Broker) -> None:
    # The daemon connects before any cloud connector answers edge/thing/request; it keeps
    # asking, so the connector that shows up later still gets the features.
    service.start()
    late = Cloud(broker.port, "late:gw")
    try:
        late.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
        got = late.call("create", "ContainerFactory", {"imageRef": IMAGE, "start": False})
        assert got.body["status"] == 200
    finally:
        late.close()


def test_features_of_containers_gone_meanwhile_are_deleted(service: Service, cloud: Cloud) -> None:
    # Kanto's known-features file: what the last connection published. A container in it
    # that no longer exists gets its feature deleted at the bootstrap; creates and removes
    # keep the file current.
    backup = service.home / "things" / f"sup_back_{cloud.thing.replace(':', '_')}.json"
    backup.parent.mkdir(parents=True, exist_ok=True)
    backup.write_text(json.dumps({"gone": "Container:gone"}))
    service.start()
    gone = "/features/Container:gone"
    cloud.wait_twin(gone, lambda t: ("delete", gone, None) in t)

    def create_running() -> str:
        value = {"imageRef": IMAGE, "start": True, "config": {"cmd": SERVE}}
        cid = str(cloud.call("createWithConfig", "ContainerFactory", value).body["value"])
        # RUNNING follows the CREATED event, whose file update the publisher made first.
        cloud.wait_twin(f"/features/Container:{cid}", lambda t: "RUNNING" in state_updates(t, cid))
        return cid

    first = create_running()
    assert json.loads(backup.read_text()) == {first: f"Container:{first}"}
    assert cloud.call("remove", f"Container:{first}", True).body["status"] == 204
    second = create_running()
    assert json.loads(backup.read_text()) == {second: f"Container:{second}"}


def _create_running(cloud: Cloud) -> str:
    value = {"imageRef": IMAGE, "start": True, "config": {"cmd": SERVE}}
    cid = str(cloud.call("createWithConfig", "ContainerFactory", value).body["value"])
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: "RUNNING" in state_updates(t, cid))
    return cid


def test_a_container_removed_while_the_broker_is_down_leaves_the_twin(
    service: Service, cloud: Cloud, broker: Broker
) -> None:
    # The delete cannot reach the broker, and the daemon restarts before it comes back
    # (paho's queue of unsent messages is gone): the known-features file still names the
    # container, since no PUBACK came, so the next bootstrap deletes its feature.
    from ocirt.cli.client import request

    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    cid = _create_running(cloud)
    backup = service.home / "things" / f"sup_back_{cloud.thing.replace(':', '_')}.json"

    broker.stop()
    request(service.socket, "remove", {"id": cid, "force": True})
    assert service.stop() == 0
    assert cid in json.loads(backup.read_text())

    cloud._subscribed.clear()
    broker.start()
    assert cloud._subscribed.wait(60), "the cloud client did not come back"
    cloud.messages.clear()
    service.start()
    path = f"/features/Container:{cid}"
    cloud.wait_twin(path, lambda t: ("delete", path, None) in t)
    # Acknowledged now: forgotten.
    cloud.wait_for(lambda: cid not in json.loads(backup.read_text()), "the file updated")


def test_commands_sent_while_the_daemon_is_away_are_answered_when_it_is_back(
    service: Service, cloud: Cloud
) -> None:
    # A persistent session: the broker queues the commands for the daemon's client id.
    service.start()
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    cid = _create_running(cloud)
    assert service.stop() == 0

    req = cloud.send("stop", f"Container:{cid}", {})
    service.start()
    assert cloud.response(req).body["status"] == 204
    cloud.wait_twin(f"/features/Container:{cid}", lambda t: "STOPPED" in state_updates(t, cid))
