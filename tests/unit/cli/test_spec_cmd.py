from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ocirt.cli.main import main

ID = "0123456789abcdef0123456789abcdef"


def write(tmp_path: Path, name: str, doc: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def spec_of(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: object, *extra: str
) -> dict[str, Any]:
    argv = ["spec", write(tmp_path, "in.json", doc), "--id", ID, "--meta-path", str(tmp_path)]
    assert main([*argv, *extra]) == 0
    out = capsys.readouterr().out
    result: dict[str, Any] = json.loads(out)
    return result


def test_create_with_config_value(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    value = {"imageRef": "busybox", "start": True, "config": {"cmd": ["/bin/true"]}}
    spec = spec_of(capsys, tmp_path, value, "--name", "web")
    assert spec["hostname"] == "web-host"
    assert spec["linux"]["sysctl"] == {"kernel.domainname": "web-domain"}
    assert {
        "type": "network",
        "path": "/var/run/netns/ocirt-efa2c2ff-0123456789abcdef0123456789abcdef",
    } in spec["linux"]["namespaces"]
    assert spec["linux"]["cgroupsPath"] == f"ocirt/{ID}"
    base = f"{tmp_path}/containers/{ID}"
    assert spec["root"]["path"] == f"{base}/bundle/rootfs"
    sources = {m["destination"]: m["source"] for m in spec["mounts"]}
    assert sources["/etc/hosts"] == f"{base}/hosts"
    assert sources["/etc/resolv.conf"] == f"{base}/resolv.conf"
    assert sources["/etc/hostname"] == f"{base}/hostname"
    assert spec["process"]["args"] == ["/bin/true"]


def test_unnamed_container_is_named_after_its_id(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = spec_of(capsys, tmp_path, {"imageRef": "busybox", "config": {"cmd": ["sh"]}})
    assert spec["hostname"] == f"{ID}-host"


def test_whole_ditto_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    message = {
        "topic": "edge/device/things/live/messages/createWithConfig",
        "path": "/features/ContainerFactory/inbox/messages/createWithConfig",
        "headers": {},
        "value": {"imageRef": "busybox", "config": {"cmd": ["echo"], "tty": True}},
    }
    spec = spec_of(capsys, tmp_path, message)
    assert spec["process"]["terminal"] is True
    assert "TERM=xterm" in spec["process"]["env"]


def test_config_object_alone(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = {"cmd": ["ls"], "networkMode": "host", "extraCapabilities": ["NET_ADMIN"]}
    spec = spec_of(capsys, tmp_path, config)
    assert spec["process"]["args"] == ["ls"]
    assert "network" not in [ns["type"] for ns in spec["linux"]["namespaces"]]
    assert "CAP_NET_ADMIN" in spec["process"]["capabilities"]["bounding"]


def test_kanto_persisted_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    persisted = {
        "container_id": ID,
        "container_name": "db",
        "image": {"name": "busybox"},
        "config": {"cmd": ["/bin/sh"], "env": ["A=1"]},
        "host_config": {
            "network_mode": "bridge",
            "resources": {"memory": "10M"},
            "devices": [
                {
                    "path_on_host": "/dev/null",
                    "path_in_container": "/dev/n",
                    "cgroup_permissions": "r",
                }
            ],
        },
        "mount_points": [{"source": "/srv", "destination": "/srv", "propagation_mode": "rshared"}],
    }
    spec = spec_of(capsys, tmp_path, persisted)
    assert spec["hostname"] == "db-host"
    assert "A=1" in spec["process"]["env"]
    assert spec["linux"]["resources"]["memory"] == {"limit": 10 << 20, "swap": 20 << 20}
    assert spec["linux"]["devices"][0]["path"] == "/dev/n"
    assert spec["linux"]["rootfsPropagation"] == "shared"


def test_image_config_blob(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    image = {
        "architecture": "amd64",
        "config": {"Entrypoint": ["/bin/echo", "ep"], "Cmd": ["x"], "User": "7:8"},
    }
    image_file = write(tmp_path, "image.json", image)
    value = {"imageRef": "busybox", "config": {"cmd": ["y"]}}
    spec = spec_of(capsys, tmp_path, value, "--image-config", image_file)
    assert spec["process"]["args"] == ["/bin/echo", "ep", "y"]
    assert spec["process"]["user"] == {"uid": 7, "gid": 8}


def test_named_user_is_resolved_in_the_rootfs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    etc = tmp_path / "containers" / ID / "bundle" / "rootfs" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("app:x:100:101::/:/bin/sh\n")
    (etc / "group").write_text("app:x:101:\n")
    image_file = write(tmp_path, "image.json", {"Cmd": ["sh"], "User": "app"})
    spec = spec_of(capsys, tmp_path, {"cmd": []}, "--image-config", image_file)
    assert spec["process"]["user"] == {"uid": 100, "gid": 101}


def test_named_user_without_rootfs_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    image_file = write(tmp_path, "image.json", {"Cmd": ["sh"], "User": "app"})
    argv = ["spec", write(tmp_path, "c.json", {}), "--image-config", image_file]
    assert main([*argv, "--meta-path", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "unable to find user app" in captured.err and captured.out == ""


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"imageRef": "x", "config": {"networkMode": "host", "portMappings": [{"hostPort": 1}]}},
            "cannot use port mappings when in host network mode",
        ),
        ({"imageRef": "x", "config": {"resources": {"memory": "1M"}}}, "minimum memory allowed"),
        ({"cmd": ["x"], "extraCapabilities": ["NO_SUCH"]}, "unknown capability"),
        ({"imageRef": "x", "config": {}}, "no command specified"),
    ],
)
def test_invalid_config_exits_2_with_the_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, doc: object, message: str
) -> None:
    assert main(["spec", write(tmp_path, "bad.json", doc), "--id", ID]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_malformed_json_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{")
    assert main(["spec", str(path)]) == 2
    assert "invalid JSON" in capsys.readouterr().err


def test_missing_file_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["spec", str(tmp_path / "none.json")]) == 1
    assert "No such file" in capsys.readouterr().err


def test_missing_device_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    value = {
        "imageRef": "x",
        "config": {
            "cmd": ["sh"],
            "devices": [{"pathOnHost": str(tmp_path / "nodev"), "pathInContainer": "/dev/x"}],
        },
    }
    assert main(["spec", write(tmp_path, "d.json", value)]) == 2
    assert "nodev" in capsys.readouterr().err
