"""The remove outcome as Kanto reports it (processRemoveAction)."""

from __future__ import annotations

from ocirt.swupdate import plan
from ocirt.swupdate.model import Dependency, RemoveRequest

A, B, C = Dependency("a"), Dependency("b"), Dependency("c")


def values(reports: list[plan.Report]) -> list[tuple[bool, dict[str, object]]]:
    return [(r.failed, r.status.to_value()) for r in reports]


def test_all_removed() -> None:
    request = RemoveRequest("c1", (A, B))
    assert values(plan.remove_outcome(request, [None, None])) == [
        (False, {"correlationId": "c1", "status": "FINISHED_SUCCESS", "software": [
            {"name": "a", "version": ""}, {"name": "b", "version": ""}]}),
    ]  # fmt: skip


def test_not_forced_rejects_the_rest_after_the_first_error() -> None:
    request = RemoveRequest("c1", (A, B, C))
    assert plan.should_try(request, 0)
    assert not plan.should_try(request, 1)
    reports = plan.remove_outcome(request, [None, "boom"])
    assert values(reports) == [
        (True, {"correlationId": "c1", "status": "FINISHED_REJECTED",
                "software": [{"name": "c", "version": ""}]}),
        (True, {"correlationId": "c1", "status": "FINISHED_ERROR",
                "software": [{"name": "b", "version": ""}], "message": "boom"}),
        (False, {"correlationId": "c1", "status": "FINISHED_SUCCESS",
                 "software": [{"name": "a", "version": ""}]}),
    ]  # fmt: skip


def test_forced_tries_everything_and_compounds_the_errors() -> None:
    request = RemoveRequest("c1", (A, B, C), forced=True)
    assert plan.should_try(request, 2)
    reports = plan.remove_outcome(request, ["e1", None, "e3"])
    assert values(reports)[0] == (
        True,
        {"correlationId": "c1", "status": "FINISHED_ERROR",
         "software": [{"name": "a", "version": ""}, {"name": "c", "version": ""}],
         "message": "2 errors:\n\n* e1\n* e3"},
    )  # fmt: skip
    assert values(reports)[1][1]["status"] == "FINISHED_SUCCESS"
    assert len(reports) == 2


def test_failed_module_report() -> None:
    from ocirt.swupdate.model import ModuleId

    report = plan.module_failed(
        "c", ModuleId("n", "1"), "md5 checksum does not match", rejected=True
    )
    assert report.failed
    assert report.status.to_value()["status"] == "FINISHED_REJECTED"
    assert plan.missing_container("X") == "container with ID = X does not exist"
