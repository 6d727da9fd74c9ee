"""What an operation reports, as pure plans the runner follows. Pure: no I/O.

Install, per module (features_rollouts_software_updatable_internal.go installModule)::

    STARTED, DOWNLOADING          then every artifact is fetched, checked and parsed
    DOWNLOADED, INSTALLING        then every container is created
    INSTALLED                     then every container is started
    FINISHED_SUCCESS

A failure ends the chain at once with FINISHED_REJECTED (checksum, descriptor
validation) or FINISHED_ERROR (anything else), sent as `lastFailedOperation` first and
then as `lastOperation`.

Remove (processRemoveAction): REMOVING per item, REMOVED when it went; without `forced`
the items after the first error are not tried. Then up to three reports: the rejected
items, the errored ones (with the errors' compound message), the removed ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ocirt.swupdate.model import (
    Dependency,
    ModuleId,
    OperationStatus,
    RemoveRequest,
    Status,
    compound_message,
)

# The steps of a module's install that come before its containers exist.
DOWNLOAD_CHAIN = (Status.STARTED, Status.DOWNLOADING)
INSTALL_CHAIN = (Status.DOWNLOADED, Status.INSTALLING)


@dataclass(frozen=True, slots=True)
class Report:
    """One status to publish; `failed` also publishes it as lastFailedOperation, first."""

    status: OperationStatus
    failed: bool = False


def step(correlation_id: str, module: ModuleId, status: Status) -> Report:
    return Report(OperationStatus(correlation_id, status, module))


def module_failed(correlation_id: str, module: ModuleId, message: str, *, rejected: bool) -> Report:
    status = Status.FINISHED_REJECTED if rejected else Status.FINISHED_ERROR
    return Report(OperationStatus(correlation_id, status, module, message=message), failed=True)


def removing(correlation_id: str, item: Dependency) -> Report:
    return Report(OperationStatus(correlation_id, Status.REMOVING, software=(item,)))


def removed(correlation_id: str, item: Dependency) -> Report:
    return Report(OperationStatus(correlation_id, Status.REMOVED, software=(item,)))


def should_try(request: RemoveRequest, errors_so_far: int) -> bool:
    """Without `forced`, the first error stops the remove; the rest count as rejected."""
    return request.forced or errors_so_far == 0


def remove_outcome(request: RemoveRequest, results: Sequence[str | None]) -> list[Report]:
    """The final reports. `results[i]` is None when item i went, else its error; items
    past the end of `results` were not tried (rejected)."""
    rejected = list(request.software[len(results) :])
    errored = [item for item, error in zip(request.software, results, strict=False) if error]
    errors = [error for error in results if error]
    succeeded = [item for item, error in zip(request.software, results, strict=False) if not error]
    cid = request.correlation_id
    reports = []
    if rejected:
        reports.append(
            Report(OperationStatus(cid, Status.FINISHED_REJECTED, software=tuple(rejected)), True)
        )
    if errored:
        message = compound_message(errors)
        status = OperationStatus(
            cid, Status.FINISHED_ERROR, software=tuple(errored), message=message
        )
        reports.append(Report(status, True))
    if succeeded:
        reports.append(
            Report(OperationStatus(cid, Status.FINISHED_SUCCESS, software=tuple(succeeded)))
        )
    return reports


def missing_container(container_id: str) -> str:
    return f"container with ID = {container_id} does not exist"
