from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ocirt.errors import ImageError
from ocirt.image.manifest import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Compression,
    Index,
    Manifest,
    Platform,
    chain_ids,
    layer_kind,
    parse_config_file,
    parse_document,
    platform_from_machine,
    platform_rank,
    select_manifest,
)
from ocirt.image.reference import parse_digest

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def doc(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def entry(
    arch: str, variant: str = "", digest: str = D1, media: str = OCI_MANIFEST
) -> dict[str, Any]:
    platform = {"os": "linux", "architecture": arch}
    if variant:
        platform["variant"] = variant
    return {"mediaType": media, "digest": digest, "size": 10, "platform": platform}


def test_manifest_parsing() -> None:
    m = parse_document(
        doc(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": "x", "digest": D1, "size": 3},
                "layers": [{"mediaType": "y", "digest": D2, "size": 4}],
            }
        ),
        DOCKER_MANIFEST + "; charset=utf-8",
    )
    assert isinstance(m, Manifest)
    assert m.layers[0].digest == parse_digest(D2)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ({"schemaVersion": 1, "name": "x"}, None, "schema1"),
        ({"schemaVersion": 2, "mediaType": OCI_MANIFEST}, OCI_INDEX, "disagrees"),
        ({"schemaVersion": 2, "mediaType": "text/plain"}, None, "unsupported"),
        ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": {}}, None, "list"),
        ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}, None, "size"),
        (
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{"mediaType": OCI_MANIFEST, "digest": "sha256:../x", "size": 1}],
            },
            None,
            "digest",
        ),
    ],
)
def test_bad_documents_are_image_errors(
    body: dict[str, Any], content_type: str | None, message: str
) -> None:
    with pytest.raises(ImageError, match=message):
        parse_document(doc(body), content_type)


def test_garbage_is_an_image_error() -> None:
    for raw in (b"\xff\xfe", b"[]", b"{", b"x" * (5 << 20)):
        with pytest.raises(ImageError):
            parse_document(raw, None)


def test_platform_normalisation() -> None:
    assert platform_from_machine("x86_64") == Platform("linux", "amd64")
    assert platform_from_machine("aarch64") == Platform("linux", "arm64")
    assert platform_from_machine("armv7l") == Platform("linux", "arm", "v7")
    assert platform_from_machine("armhf") == Platform("linux", "arm", "v7")
    assert platform_from_machine("armel") == Platform("linux", "arm", "v6")
    assert platform_from_machine("i686") == Platform("linux", "386")


def test_platform_fallback_cm161() -> None:
    pi = Platform("linux", "arm", "v7")
    assert platform_rank(pi, Platform("linux", "arm", "v7")) == 0
    assert platform_rank(pi, Platform("linux", "arm", "v6")) == 1
    assert platform_rank(pi, Platform("linux", "arm", "v8")) is None
    assert platform_rank(Platform("linux", "arm64"), Platform("linux", "arm", "v7")) is not None
    assert platform_rank(Platform("linux", "amd64"), Platform("linux", "arm64")) is None
    assert platform_rank(Platform("linux", "amd64"), Platform("linux", "amd64", "v1")) == 0
    assert platform_rank(Platform("linux", "amd64"), Platform("windows", "amd64")) is None


def test_select_prefers_exact_then_closest_lower_variant() -> None:
    index = Index(OCI_INDEX, ())
    raw = doc(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                entry("arm", "v5", D1),
                entry("arm", "v6", D2),
                entry("amd64", "", D3),
                {"mediaType": "application/vnd.in-toto+json", "digest": D1, "size": 1},
            ],
        }
    )
    index = parse_document(raw, OCI_INDEX)
    assert isinstance(index, Index)
    assert select_manifest(index, Platform("linux", "arm", "v7")).digest == parse_digest(D2)
    assert select_manifest(index, Platform("linux", "amd64")).digest == parse_digest(D3)
    with pytest.raises(ImageError, match="no image for platform linux/riscv64"):
        select_manifest(index, Platform("linux", "riscv64"))


def test_config_fields_and_chain_ids() -> None:
    cfg = parse_config_file(
        doc(
            {
                "architecture": "x86_64",
                "os": "linux",
                "config": {
                    "Entrypoint": ["/bin/sh", "-c"],
                    "Cmd": ["echo hi"],
                    "Env": ["A=1"],
                    "WorkingDir": "/srv",
                    "User": "1000:1000",
                    "StopSignal": "SIGINT",
                    "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
                    "Volumes": {"/data": {}},
                    "Labels": {"l": "v"},
                },
                "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
            }
        )
    )
    assert cfg.platform == Platform("linux", "amd64")
    run = cfg.execution
    assert run.entrypoint == ("/bin/sh", "-c") and run.cmd == ("echo hi",)
    assert run.exposed_ports == ("53/udp", "8080/tcp")
    assert run.volumes == ("/data",) and dict(run.labels) == {"l": "v"}
    assert run.stop_signal == "SIGINT" and run.working_dir == "/srv"
    chains = chain_ids(cfg.diff_ids)
    assert chains[0] == parse_digest(D1)
    assert chains[1].hex == hashlib.sha256(f"{D1} {D2}".encode()).hexdigest()


def test_config_with_wrong_types_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="Cmd"):
        parse_config_file(
            doc({"config": {"Cmd": "sh"}, "rootfs": {"type": "layers", "diff_ids": []}})
        )
    with pytest.raises(ImageError, match="rootfs"):
        parse_config_file(doc({"config": {}, "rootfs": {"type": "other", "diff_ids": []}}))


def test_layer_kinds() -> None:
    assert layer_kind("application/vnd.oci.image.layer.v1.tar+gzip").compression is Compression.GZIP
    enc = layer_kind("application/vnd.oci.image.layer.v1.tar+zstd+encrypted")
    assert enc.encrypted and enc.compression is Compression.ZSTD
    with pytest.raises(ImageError):
        layer_kind("application/x-evil")


def _padded_manifest(total: int) -> bytes:
    body = doc(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "x", "digest": D1, "size": 3},
            "layers": [],
        }
    )
    return body + b" " * (total - len(body))  # JSON allows trailing whitespace


def test_manifest_limit_is_four_mebibytes() -> None:
    assert isinstance(parse_document(_padded_manifest(4 * 1024 * 1024)), Manifest)
    with pytest.raises(ImageError, match="too large"):
        parse_document(_padded_manifest(4 * 1024 * 1024 + 1))
