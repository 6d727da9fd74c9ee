from __future__ import annotations

from typing import Any

import pytest

from ocirt.errors import ImageError
from ocirt.spec.facts import ImageConfig, NetworkAttachment


def test_parses_a_docker_image_config() -> None:
    raw: dict[str, Any] = {
        "User": "1000:1000",
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "Env": ["PATH=/bin", "A=b=c"],
        "Entrypoint": ["/entry"],
        "Cmd": ["--flag"],
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Labels": {"k": "v"},
        "StopSignal": "SIGINT",
    }
    assert ImageConfig.from_oci_json(raw) == ImageConfig(
        entrypoint=("/entry",),
        cmd=("--flag",),
        env=("PATH=/bin", "A=b=c"),
        working_dir="/srv",
        user="1000:1000",
        stop_signal="SIGINT",
        exposed_ports=("53/udp", "8080/tcp"),
        volumes=("/data",),
        labels=(("k", "v"),),
    )


def test_nulls_and_absent_keys_are_empty() -> None:
    raw = {"Entrypoint": None, "Cmd": None, "Env": None, "Labels": None}
    assert ImageConfig.from_oci_json(raw) == ImageConfig()
    assert ImageConfig.from_oci_json(None) == ImageConfig()
    assert ImageConfig.from_image_json({"architecture": "amd64"}) == ImageConfig()


def test_whole_image_config_blob() -> None:
    blob = {"architecture": "amd64", "config": {"Cmd": ["sh"]}}
    assert ImageConfig.from_image_json(blob).cmd == ("sh",)


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"Cmd": "sh"},
        {"Cmd": [1]},
        {"Env": {"A": "b"}},
        {"WorkingDir": 3},
        {"ExposedPorts": ["80/tcp"]},
        {"Labels": {"a": 1}},
        {"User": ["root"]},
    ],
)
def test_wrong_types_are_image_errors(raw: object) -> None:
    with pytest.raises(ImageError):
        ImageConfig.from_oci_json(raw)


def test_whole_blob_must_be_an_object() -> None:
    with pytest.raises(ImageError):
        ImageConfig.from_image_json("config")


def test_network_attachment() -> None:
    assert NetworkAttachment.host().is_host
    assert not NetworkAttachment.netns("/var/run/netns/x").is_host
