"""Kanto's SoftwareUpdatable values: request decoding, texts, checksums, dependency keys."""

from __future__ import annotations

import hashlib

import pytest

from ocirt.errors import InvalidArgument
from ocirt.swupdate import model
from ocirt.swupdate.model import Dependency, ModuleId, OperationStatus, Rejected, Status

BODY = b'{"container_name": "influxdb", "image": {"name": "docker.io/library/influxdb:1.8.4"}}'


def artifact(**checksums: str) -> dict[str, object]:
    return {
        "filename": "valid.json",
        "download": {"HTTPS": {"url": "https://h/valid.json", "md5url": "x"}},
        "checksums": checksums,
        "size": len(BODY),
    }


def install(*modules: dict[str, object]) -> dict[str, object]:
    return {"correlationId": "c1", "softwareModules": list(modules), "forced": True}


def test_install_is_decoded() -> None:
    request = model.parse_install(
        install(
            {
                "softwareModule": {"name": "influxdb", "version": "1.8.4"},
                "artifacts": [artifact(MD5="ab")],
            }
        )
    )
    assert request.correlation_id == "c1"
    assert request.forced
    (module,) = request.modules
    assert module.module == ModuleId("influxdb", "1.8.4")
    assert module.artifacts[0].url() == "https://h/valid.json"
    assert module.artifacts[0].size == len(BODY)


def test_http_is_preferred_over_https() -> None:
    raw = artifact()
    raw["download"] = {"HTTPS": {"url": "https://a"}, "HTTP": {"url": "http://b"}}
    request = model.parse_install(
        install({"softwareModule": {"name": "n", "version": "v"}, "artifacts": [raw]})
    )
    assert request.modules[0].artifacts[0].url() == "http://b"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "there are no SoftwareModules to be installed"),
        ({"softwareModules": []}, "there are no SoftwareModules to be installed"),
        (
            {"softwareModules": [{"softwareModule": {"name": "n", "version": "1"}}]},
            "there are no SoftwareArtifacts referenced for SoftwareModule [Name.version] = [n.1]",
        ),
        (
            {
                "softwareModules": [
                    {"softwareModule": {"name": "n", "version": "1"}, "artifacts": []}
                ]
            },
            "there are no SoftwareArtifacts referenced for SoftwareModule [Name.version] = [n.1]",
        ),
        (
            {"correlationId": 5, "softwareModules": []},
            "json: cannot unmarshal number into Go struct field "
            "UpdateAction.correlationId of type string",
        ),
        ("x", "json: cannot unmarshal string into Go value of type datatypes.UpdateAction"),
    ],
)
def test_install_refusals_have_kantos_texts(value: object, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        model.parse_install(value)
    assert caught.value.message == message
    assert caught.value.status == 400


def test_remove_is_decoded_and_empty_is_refused() -> None:
    request = model.parse_remove(
        {"correlationId": "c", "software": [{"name": "id1"}], "forced": False}
    )
    assert request.software == (Dependency("id1"),)
    assert not request.forced
    for value in ({"software": []}, {}, {"software": None}):
        with pytest.raises(
            InvalidArgument, match=r"^there are no DependencyDescriptions to be removed$"
        ):
            model.parse_remove(value)


def test_unsupported_operation_text() -> None:
    assert (
        model.unsupported_operation("cancel")
        == "unsupported operation called [operationId = cancel]"
    )


@pytest.mark.parametrize("name", ["MD5", "SHA1", "SHA256"])
def test_each_checksum_type_is_checked(name: str) -> None:
    digest = hashlib.new(name.lower(), BODY).hexdigest()
    model.check_checksum(BODY, {name: digest})
    model.check_checksum(BODY, {name: f"  {digest.upper()}\n"})
    wrong = hashlib.new(name.lower(), b"other").hexdigest()
    with pytest.raises(Rejected, match=f"^{name.lower()} checksum does not match$"):
        model.check_checksum(BODY, {name: wrong})


def test_the_first_checksum_present_decides() -> None:
    good_sha1 = hashlib.sha1(BODY).hexdigest()
    # MD5 wins over a correct SHA1: Kanto checks only the first one present.
    with pytest.raises(Rejected, match="md5 checksum does not match"):
        model.check_checksum(BODY, {"SHA1": good_sha1, "MD5": "00" * 16})
    model.check_checksum(BODY, {"MD5": "", "SHA1": good_sha1, "SHA256": "00" * 32})
    model.check_checksum(BODY, {})


@pytest.mark.parametrize(
    ("name", "text", "size"),
    [
        ("MD5", hashlib.sha1(BODY).hexdigest(), 16),  # Kanto's conformance case: a panic there
        ("MD5", "zz" * 16, 16),
        ("MD5", "abc", 16),
        ("SHA1", "0" * 41, 20),
        ("SHA256", "0" * 66, 32),
    ],
)
def test_bad_hex_is_a_clean_rejection(name: str, text: str, size: int) -> None:
    with pytest.raises(Rejected) as caught:
        model.check_checksum(BODY, {name: text})
    assert str(caught.value) == (
        "the provided input hash is either invalid, not a hex string or the length "
        f"exceeds {size} bytes"
    )


def test_a_short_hash_does_not_match() -> None:
    with pytest.raises(Rejected, match="md5 checksum does not match"):
        model.check_checksum(BODY, {"MD5": hashlib.md5(BODY).hexdigest()[:8]})


def test_dependency_keys_split_the_image_at_every_colon() -> None:
    assert model.installed_dependencies([("id1", "localhost:5000/a/b:1")]) == {
        "localhost.id1:5000%2Fa%2Fb:1": {
            "group": "localhost",
            "name": "id1",
            "version": "5000/a/b:1",
        }
    }
    assert model.installed_dependencies([("x", "docker.io/library/influxdb:1.8.4")]) == {
        "docker.io%2Flibrary%2Finfluxdb.x:1.8.4": {
            "group": "docker.io/library/influxdb",
            "name": "x",
            "version": "1.8.4",
        }
    }
    assert model.installed_dependencies([("y", "busybox")]) == {
        "busybox.y:": {"group": "busybox", "name": "y", "version": ""}
    }


def test_feature_value_leaves_out_empty_dependencies() -> None:
    assert model.FeatureStatus({}).feature_value() == {
        "definition": ["org.eclipse.hawkbit.swupdatable:SoftwareUpdatable:2.0.0"],
        "properties": {"status": {"softwareModuleType": "oci:container"}},
    }
    deps = model.installed_dependencies([("y", "a:1")])
    assert model.FeatureStatus(deps).feature_value()["properties"] == {
        "status": {"softwareModuleType": "oci:container", "installedDependencies": deps}
    }


def test_operation_status_values() -> None:
    assert OperationStatus("c", Status.STARTED, ModuleId("n", "1")).to_value() == {
        "correlationId": "c",
        "status": "STARTED",
        "softwareModule": {"name": "n", "version": "1"},
    }
    removing = OperationStatus("c", Status.REMOVING, software=(Dependency("id1"),))
    assert removing.to_value() == {
        "correlationId": "c",
        "status": "REMOVING",
        "software": [{"name": "id1", "version": ""}],
    }


def test_compound_message() -> None:
    assert model.compound_message(["a"]) == "a"
    assert model.compound_message(["a", "b"]) == "2 errors:\n\n* a\n* b"
