"""Errors a caller of the API can act on (`idlefleet.api.status` maps them to gRPC codes)."""

from __future__ import annotations


class ApiError(Exception):
    """Base of the errors the API reports to callers."""


class InvalidFieldError(ApiError, ValueError):
    """A request field is malformed; the message starts with its path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


class UnknownIdError(ApiError, LookupError):
    """No job, site, region or vehicle has this id."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"unknown {kind} {identifier!r}")


class JobConflictError(ApiError):
    """A job id already names a job with other content."""


class PreconditionError(ApiError):
    """The request cannot be served in the current state (no plan yet, a finished job)."""


class BusyError(ApiError):
    """A bounded resource (what-if solver, plan watchers) is fully in use."""


class OutOfTimeError(ApiError):
    """The call's deadline leaves no time to do the work."""


class UnavailableError(ApiError):
    """A dependency did not answer (the broker), or the server is shutting down."""


class NotAllowedError(ApiError):
    """The caller may not change this object (another principal's DR cap)."""
