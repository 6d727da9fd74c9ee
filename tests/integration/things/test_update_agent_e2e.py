"""The containers update agent end to end: real mosquitto, the real daemon, runc
containers, and a paho client in the test acting as Kanto's Update Manager."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from service_harness import IMAGE, WAIT, Broker, Cloud, Service, in_container

pytestmark = pytest.mark.integration

P = "containersupdate"
SERVE = "trap 'exit 0' TERM INT; while :; do sleep 1; done"


class UpdateManager:
    """Kanto's Update Manager as far as the agent sees it: sends, records what comes back."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"um-{uuid.uuid4()}")
        self.client.on_connect = lambda c, *a: c.subscribe(
            [(f"{P}/currentstate", 1), (f"{P}/desiredstatefeedback", 1)]
        )
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, 20)
        self.client.loop_start()
        assert subscribed.wait(WAIT)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, json.loads(msg.payload)))
            self._cond.notify_all()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, topic: str, activity: str, payload: Any) -> None:
        body = json.dumps({"activityId": activity, "timestamp": 1, "payload": payload})
        self.client.publish(f"{P}/{topic}", body, qos=1).wait_for_publish(WAIT)

    def wait_for(self, predicate: Callable[[], Any], what: str) -> Any:
        # Re-checked on every message and every 0.2 s: some predicates look at the
        # daemon (the CLI), not at messages, and no message may follow what they wait for.
        deadline = time.monotonic() + WAIT * 2
        with self._cond:
            while not (result := predicate()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.2))
        assert result, f"timed out waiting for {what}: {self.messages[-5:]}"
        return result

    def feedback(self, activity: str) -> list[dict[str, Any]]:
        with self._cond:
            return [
                body["payload"]
                for topic, body in self.messages
                if topic.endswith("desiredstatefeedback") and body["activityId"] == activity
            ]

    def statuses(self, activity: str) -> list[str]:
        return [f["status"] for f in self.feedback(activity)]

    def wait_status(self, activity: str, *statuses: str) -> dict[str, Any]:
        def found() -> Any:
            return next((f for f in self.feedback(activity) if f["status"] in statuses), None)

        return self.wait_for(found, f"{statuses} of {activity}")  # type: ignore[no-any-return]

    def current_states(self, activity_prefix: str = "") -> list[dict[str, Any]]:
        with self._cond:
            return [
                body
                for topic, body in self.messages
                if topic == f"{P}/currentstate" and body["activityId"].startswith(activity_prefix)
            ]

    def run(self, activity: str, *commands: str, baseline: str = "") -> list[str]:
        """Send each command and wait for its final status; returns those statuses."""
        finals = {
            "DOWNLOAD": ("DOWNLOAD_SUCCESS", "DOWNLOAD_FAILURE"),
            "UPDATE": ("UPDATE_SUCCESS", "UPDATE_FAILURE"),
            "ACTIVATE": ("ACTIVATION_SUCCESS", "ACTIVATION_FAILURE"),
            "ROLLBACK": ("ROLLBACK_SUCCESS", "ROLLBACK_FAILURE"),
            "CLEANUP": ("COMPLETED", "INCOMPLETE"),
        }
        results = []
        for command in commands:
            before = len(self.feedback(activity))
            self.send("desiredstate/command", activity, {"command": command, "baseline": baseline})

            def done(command: str = command, before: int = before) -> Any:
                new = self.feedback(activity)[before:]
                return next((f for f in new if f["status"] in finals[command]), None)

            results.append(self.wait_for(done, f"{command} of {activity}")["status"])
        return results


@pytest.fixture
def um(broker: Broker) -> Iterator[UpdateManager]:
    manager = UpdateManager(broker.port)
    try:
        yield manager
    finally:
        manager.close()


def component(name: str, *pairs: tuple[str, str], serve: bool = True) -> dict[str, Any]:
    config = [{"key": "image", "value": IMAGE}]
    config += [{"key": k, "value": v} for k, v in pairs]
    if serve:
        config += [{"key": "cmd", "value": v} for v in ("sh", "-c", SERVE)]
    return {"id": name, "version": "itest", "config": config}


def desired(*components: dict[str, Any], domain: str = "containers") -> dict[str, Any]:
    return {"domains": [{"id": domain, "components": list(components)}]}


def start(service: Service, um: UpdateManager, **agent: Any) -> None:
    """Start the daemon and wait until its agent is subscribed (it then publishes)."""
    service.extra_config["update_agent"] = {"enable": True, "activation_monitor": "1s", **agent}
    service.start()
    um.wait_for(lambda: um.current_states("initial-current-state-"), "the agent's first state")


def containers(service: Service) -> dict[str, dict[str, Any]]:
    listed = service.cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    return {c["name"]: c for c in json.loads(listed.stdout)}


def inside_env(service: Service, cid: str) -> list[str]:
    return in_container(service, cid, "cat", "/proc/1/environ").split("\0")


def nodes(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        n["id"]: {p["key"]: p.get("value", "") for p in n.get("parameters", [])}
        for n in state["payload"]["softwareNodes"]
    }


def test_current_state_at_connect_and_on_get(service: Service, um: UpdateManager) -> None:
    start(service, um)
    first = um.wait_for(lambda: um.current_states("initial-current-state-"), "initial state")[0]
    agent = first["payload"]["softwareNodes"][0]
    assert agent["id"] == "containers-update-agent"
    assert agent["name"] == "Eclipse Kanto Containers Update Agent"
    assert agent["parameters"] == [{"key": "domain", "value": "containers"}]
    assert "associations" not in first["payload"]
    um.send("currentstate/get", "get-1", None)
    answer = um.wait_for(lambda: um.current_states("get-1"), "current state answer")[0]
    assert answer["payload"] == first["payload"]


def test_create_recreate_update_check_destroy(service: Service, um: UpdateManager) -> None:
    start(service, um)
    # create
    um.send("desiredstate", "a1", desired(component("web", ("env", "V=1")), component("db")))
    identified = um.wait_status("a1", "IDENTIFIED")
    assert [(a["component"]["id"], a["message"]) for a in identified["actions"]] == [
        ("containers:web", "New container will be created and started."),
        ("containers:db", "New container will be created and started."),
    ]
    assert um.run("a1", "DOWNLOAD", "UPDATE", "ACTIVATE", "CLEANUP") == [
        "DOWNLOAD_SUCCESS", "UPDATE_SUCCESS", "ACTIVATION_SUCCESS", "COMPLETED",
    ]  # fmt: skip
    before = containers(service)
    assert {n: c["state"]["status"] for n, c in before.items()} == {
        "web": "RUNNING",
        "db": "RUNNING",
    }
    assert "V=1" in inside_env(service, before["web"]["id"])
    # recreate (env), update in place (restart policy), destroy (db), check
    um.send(
        "desiredstate",
        "a2",
        desired(component("web", ("env", "V=2"), ("restartPolicy", "always")), component("x")),
    )
    identified = um.wait_status("a2", "IDENTIFIED")
    assert {a["component"]["id"]: a["message"] for a in identified["actions"]} == {
        "containers:web": "Existing container will be destroyed and replaced by a new one.",
        "containers:x": "New container will be created and started.",
        "containers:db": "Existing container will be destroyed, no longer needed.",
    }
    assert um.run("a2", "DOWNLOAD", "UPDATE", "ACTIVATE", "CLEANUP") == [
        "DOWNLOAD_SUCCESS", "UPDATE_SUCCESS", "ACTIVATION_SUCCESS", "COMPLETED",
    ]  # fmt: skip
    final = {a["component"]["id"]: a["status"] for a in um.feedback("a2")[-2]["actions"]}
    assert final["containers:db"] == "REMOVAL_SUCCESS"
    after = containers(service)
    assert set(after) == {"web", "x"}
    assert after["web"]["id"] != before["web"]["id"]
    env = inside_env(service, after["web"]["id"])
    assert "V=2" in env and "V=1" not in env
    # update in place: only the restart policy differs
    um.send(
        "desiredstate",
        "a3",
        desired(component("web", ("env", "V=2"), ("restartPolicy", "no")), component("x")),
    )
    identified = um.wait_status("a3", "IDENTIFIED")
    assert {a["component"]["id"]: a["message"] for a in identified["actions"]} == {
        "containers:web": "Existing container will be updated with new configuration.",
        "containers:x": "No changes detected, existing container will be check only if it "
        "is running.",
    }
    um.run("a3", "DOWNLOAD", "UPDATE", "ACTIVATE", "CLEANUP")
    assert um.statuses("a3")[-1] == "COMPLETED"
    updated = containers(service)
    assert updated["web"]["id"] == after["web"]["id"]  # the same container
    assert updated["web"]["config"]["restartPolicy"]["type"] == "NO"
    assert updated["web"]["state"]["status"] == "RUNNING"


def test_wrong_command_order(service: Service, um: UpdateManager) -> None:
    start(service, um)
    um.send("desiredstate", "a1", desired(component("web")))
    um.wait_status("a1", "IDENTIFIED")
    um.send("desiredstate/command", "a1", {"command": "ACTIVATE", "baseline": ""})
    refused = um.wait_status("a1", "ACTIVATION_FAILURE")
    assert refused["message"] == "ACTIVATE is possible only after status UPDATE_SUCCESS is reported"
    um.send("desiredstate/command", "a1", {"command": "DOWNLOAD", "baseline": "nothing"})
    unknown = um.wait_status("a1", "DOWNLOAD_FAILURE")
    assert unknown["message"] == "Unknown baseline nothing"
    assert containers(service) == {}


def test_wrong_domain_and_a_second_domain(service: Service, um: UpdateManager) -> None:
    start(service, um)
    um.send("desiredstate", "a1", desired(component("web"), domain="files"))
    failed = um.wait_status("a1", "IDENTIFICATION_FAILED")
    assert failed == {
        "status": "IDENTIFICATION_FAILED",
        "message": "domain id mismatch - expecting containers, received files",
    }
    two = {"domains": [{"id": "containers"}, {"id": "files"}]}
    um.send("desiredstate", "a2", two)
    failed = um.wait_status("a2", "IDENTIFICATION_FAILED")
    assert failed["message"] == "one domain expected in desired state specification, but got 2"


def test_current_state_republished_after_a_ditto_create(
    service: Service, um: UpdateManager, cloud: Cloud
) -> None:
    start(service, um)
    cloud.wait_twin("/features/ContainerFactory", lambda t: len(t) >= 1)
    assert [n for n in nodes(um.current_states()[-1])] == ["containers-update-agent"]
    req = cloud.send("create", "ContainerFactory", {"imageRef": IMAGE, "start": False})
    response = cloud.response(req).body
    assert response["status"] == 200
    cid = response["value"]

    def republished() -> Any:
        for state in um.current_states("current-state-"):
            params = nodes(state).get(f"containers:{cid}")
            if params and params.get("status") == "Created":
                return state
        return None

    um.wait_for(republished, "current state with the Ditto-created container")


def test_autonomous_rollback_of_a_container_that_exits(service: Service, um: UpdateManager) -> None:
    start(service, um, auto_apply=True)
    um.send("desiredstate", "a1", desired(component("app", ("env", "V=1"))))
    assert um.wait_status("a1", "COMPLETED", "INCOMPLETE")["status"] == "COMPLETED"
    old = containers(service)["app"]
    # The new version's process exits at once.
    bad = component("app", ("env", "V=2"), ("cmd", "false"), serve=False)
    um.send("desiredstate", "a2", desired(bad))
    assert um.wait_status("a2", "COMPLETED", "INCOMPLETE")["status"] == "INCOMPLETE"
    statuses = um.statuses("a2")
    assert statuses == [
        "IDENTIFYING", "IDENTIFIED", "DOWNLOADING", "DOWNLOAD_SUCCESS", "UPDATING",
        "UPDATE_SUCCESS", "ACTIVATING", "ACTIVATION_FAILURE", "ROLLBACK", "ROLLBACK_SUCCESS",
        "CLEANUP_SUCCESS", "INCOMPLETE",
    ]  # fmt: skip
    failure = um.feedback("a2")[7]["actions"][0]
    assert failure["status"] == "ACTIVATION_FAILURE"
    assert "instead of running" in failure["message"] or "restarted" in failure["message"]
    now = containers(service)
    assert set(now) == {"app"}
    assert now["app"]["id"] == old["id"]
    assert now["app"]["state"]["status"] == "RUNNING"
    env = inside_env(service, old["id"])
    assert "V=1" in env and "V=2" not in env


def test_ocirt_apply(service: Service, tmp_path: Any) -> None:
    service.start()  # the agent's MQTT side is off: `ocirt apply` needs none
    path = tmp_path / "desired.json"
    path.write_text(json.dumps(desired(component("one"))))
    done = service.cli("apply", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "IDENTIFYING" and lines[-1] == "COMPLETED"
    assert "ACTIVATION_SUCCESS" in lines
    assert containers(service)["one"]["state"]["status"] == "RUNNING"


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
def test_a_stop_mid_activation_is_rolled_back_at_the_next_start(
    service: Service, um: UpdateManager, stop_signal: int
) -> None:
    start(service, um, auto_apply=True)
    um.send("desiredstate", "a1", desired(component("app", ("env", "V=1"))))
    assert um.wait_status("a1", "COMPLETED", "INCOMPLETE")["status"] == "COMPLETED"
    old = containers(service)["app"]
    # Again with a long activation check, during which the daemon is killed.
    service.stop()
    connects = len(um.current_states("initial-current-state-"))
    service.extra_config["update_agent"]["activation_monitor"] = "300s"
    service.start()
    um.wait_for(lambda: len(um.current_states("initial-current-state-")) > connects, "reconnect")
    um.send("desiredstate", "a2", desired(component("app", ("env", "V=2"))))

    def replaced() -> bool:
        app = containers(service).get("app")
        return app is not None and app["id"] != old["id"] and app["state"]["status"] == "RUNNING"

    um.wait_status("a2", "ACTIVATING")
    um.wait_for(replaced, "the new container running under the name")
    service.stop(stop_signal)
    service.extra_config["update_agent"]["activation_monitor"] = "1s"
    service.start()
    um.wait_status("a2", "COMPLETED", "INCOMPLETE")
    feedback = um.feedback("a2")
    statuses = [f["status"] for f in feedback]
    restarted = statuses.index("ROLLBACK")
    assert feedback[restarted]["message"] == (
        "The container manager restarted during the update; rolling it back."
    )
    assert statuses[-3:] == ["ROLLBACK_SUCCESS", "CLEANUP_SUCCESS", "INCOMPLETE"]
    now = containers(service)
    assert set(now) == {"app"}
    assert now["app"]["id"] == old["id"]
    assert now["app"]["state"]["status"] == "RUNNING"
    env = inside_env(service, old["id"])
    assert "V=1" in env and "V=2" not in env
