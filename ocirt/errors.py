"""The one error hierarchy of ocirt. Pure: no I/O.

Every error knows the Ditto status and error code that a client gets back, so the
things front end maps any OcirtError without knowing where it came from
(`ocirt.things.protocol.DittoError.from_exception`)::

    OcirtError                      500 messages:execution.failed
    +-- InvalidArgument             400 messages:parameter.invalid
    |   +-- ValidationError         400   invalid container config (docs/kanto-compatibility.md §3)
    |   +-- InvalidReference        400   unparsable image reference
    +-- NotFound                    404 things:feature.notfound
    +-- AlreadyExists               500
    +-- FailedPrecondition          500   operation not allowed in the current state
    +-- Unavailable                 500   a needed service or host cannot be reached
    |   +-- RegistryUnavailable
    |   +-- Overloaded              503 messages:service.unavailable  queue full, stopping
    +-- TooLarge                    413 messages:payload.toolarge      input over a bound
    +-- PermissionDenied            500
    |   +-- AuthenticationError           bad registry credentials
    +-- RuncError                   500   runc failed; carries its stderr
    +-- MonitorError                500   the per-container monitor failed
    +-- NetworkError                500   netlink/iptables/nftables failed
    +-- ImageError                  500
        +-- DigestMismatch                content does not match its digest
        +-- UnsafeLayer                   a layer tries to write outside the rootfs
        +-- DecryptError                  wrong key, HMAC mismatch, unknown protocol
        +-- CorruptLayer                  a layer that is not a valid (compressed) tar
        +-- ImageNotFound                 unknown image in registry or store

Kanto answers every manager error with 500 (docs/kanto-compatibility.md §2); ocirt keeps 500 for
errors of execution and uses 400/404 where the request itself is at fault
(docs/kanto-compatibility.md decision 3).
"""

from __future__ import annotations


class OcirtError(Exception):
    """Root of all ocirt errors. `message` is what the client sees."""

    status: int = 500
    code: str = "messages:execution.failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(OcirtError):
    status = 400
    code = "messages:parameter.invalid"


class ValidationError(InvalidArgument):
    """A container configuration that fails Kanto's validation; message is Kanto's text."""


class InvalidReference(InvalidArgument):
    pass


class NotFound(OcirtError):
    status = 404
    code = "things:feature.notfound"


class AlreadyExists(OcirtError):
    pass


class FailedPrecondition(OcirtError):
    """The operation is not allowed in the object's current state (Kanto answers 500)."""


class Unavailable(OcirtError):
    pass


class RegistryUnavailable(Unavailable):
    pass


class Overloaded(Unavailable):
    """No room to take the request now (its queue is full, or the daemon is stopping);
    answered at once so the client can retry, rather than left without an answer."""

    status = 503
    code = "messages:service.unavailable"


class TooLarge(OcirtError):
    """An input over a size bound, refused unread."""

    status = 413
    code = "messages:payload.toolarge"


class PermissionDenied(OcirtError):
    pass


class AuthenticationError(PermissionDenied):
    pass


class RuncError(OcirtError):
    """runc (or the configured runtime) exited non-zero; `stderr` holds what it said."""

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None) -> None:
        detail = f"{message}: {stderr.strip()}" if stderr.strip() else message
        super().__init__(detail)
        self.stderr = stderr
        self.returncode = returncode


class MonitorError(OcirtError):
    pass


class NetworkError(OcirtError):
    pass


class ImageError(OcirtError):
    pass


class DigestMismatch(ImageError):
    pass


class UnsafeLayer(ImageError):
    pass


class DecryptError(ImageError):
    pass


class CorruptLayer(ImageError):
    pass


class ImageNotFound(ImageError):
    """The registry or the local store does not know the image (500, as Kanto's pull error)."""
