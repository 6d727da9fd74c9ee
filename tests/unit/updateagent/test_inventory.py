from __future__ import annotations

from dataclasses import replace

import pytest

from ocirt.config.model import ContainerId, PortMapping, PortProtocol
from ocirt.manager.types import ContainerState, ContainerView, Status
from ocirt.updateagent.desired import to_container
from ocirt.updateagent.inventory import container_parameters, current_state, go_duration, port_text


def view(name: str = "app", status: Status = Status.RUNNING, **pairs: str) -> ContainerView:
    container = to_container(name, "1", list(pairs.items()), [])
    return ContainerView(
        ContainerId("id1"),
        name,
        "reg/app:1.0",
        container.config,
        "2024-01-01T00:00:00Z",
        ContainerState(status=status),
    )


def test_defaults_are_left_out() -> None:
    assert container_parameters(view()) == [
        ("image", "reg/app:1.0"),
        ("status", "Running"),
        ("created", "2024-01-01T00:00:00Z"),
    ]


def test_non_defaults_in_kantos_order() -> None:
    v = view(
        cmd="sleep",
        env="A=1",
        memory="10M",
        restartPolicy="on-failure",
        restartMaxRetries="2",
        restartTimeout="90",
        terminal="true",
        port="8080:80",
        logMode="non-blocking",
        mount="/a:/b",
    )
    v = replace(
        v,
        restart_count=3,
        manually_stopped=True,
        state=ContainerState(Status.EXITED, exit_code=2, finished_at="F"),
    )
    assert [k for k, _ in container_parameters(v)] == [
        "image", "terminal", "restartPolicy", "restartMaxRetries", "restartTimeout", "port",
        "logMode", "memory", "memorySwap", "mount", "env", "cmd",
        "status", "finishedAt", "exitCode", "created", "restartCount", "manuallyStopped",
    ]  # fmt: skip
    params = dict(container_parameters(v))
    assert params["restartTimeout"] == "1m30s"
    assert params["port"] == "8080:80/tcp"
    assert params["mount"] == "/a:/b:rprivate"
    assert params["status"] == "Exited"


def test_verbose_shows_defaults() -> None:
    keys = [k for k, _ in container_parameters(view(), verbose=True)]
    assert keys[:4] == ["image", "domainName", "hostName", "terminal"]
    assert "manuallyStopped" in keys and "exitCode" in keys


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (30, "30s"), (90, "1m30s"), (3600, "1h0m0s")]
)
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text


def test_port_text() -> None:
    assert port_text(PortMapping(80, 5000, 6000, PortProtocol.UDP, "1.2.3.4")) == (
        "1.2.3.4:5000-6000:80/udp"
    )


def test_current_state_graph() -> None:
    state = current_state("containers", "0.1", [view("web")])
    assert state["softwareNodes"][0] == {  # type: ignore[index]
        "id": "containers-update-agent",
        "version": "0.1",
        "name": "Eclipse Kanto Containers Update Agent",
        "parameters": [{"key": "domain", "value": "containers"}],
        "type": "APPLICATION",
    }
    node = state["softwareNodes"][1]  # type: ignore[index]
    assert (node["id"], node["version"], node["type"]) == ("containers:web", "1.0", "CONTAINER")
    assert state["associations"] == [
        {"sourceId": "containers-update-agent", "targetId": "containers:web"}
    ]
    assert "associations" not in current_state("containers", "0.1", [])
