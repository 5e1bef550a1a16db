"""The one place that maps errors to gRPC status codes."""

from __future__ import annotations

import grpc

from idlefleet.queries.errors import (
    BusyError,
    InvalidFieldError,
    JobConflictError,
    NotAllowedError,
    OutOfTimeError,
    PreconditionError,
    UnavailableError,
    UnknownIdError,
)
from optimizer.errors import SolveError

_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidFieldError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownIdError, grpc.StatusCode.NOT_FOUND),
    (JobConflictError, grpc.StatusCode.ALREADY_EXISTS),
    (PreconditionError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotAllowedError, grpc.StatusCode.PERMISSION_DENIED),
    (BusyError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (OutOfTimeError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (SolveError, grpc.StatusCode.UNAVAILABLE),
)


#: Longest status message [bytes of UTF-8]. Messages echo request values (ids, documents), and
#: the message travels percent-encoded in a trailer: past gRPC's metadata limit (8 KiB by
#: default) the client would get RESOURCE_EXHAUSTED instead of the status.
MAX_DETAILS_BYTES = 1024


def status_of(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message a caller gets for `error`; INTERNAL for anything unknown
    (a bug: its details stay in the server's log)."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code, bounded(str(error))
    return grpc.StatusCode.INTERNAL, "internal error"


def bounded(message: str) -> str:
    """`message` cut to MAX_DETAILS_BYTES, marked with "..." when cut."""
    data = message.encode()
    if len(data) <= MAX_DETAILS_BYTES:
        return message
    return data[: MAX_DETAILS_BYTES - 3].decode(errors="ignore") + "..."
