"""Errors a caller of the API can act on (`idlefleet.api.status` maps them to gRPC codes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    """Base of the errors the API reports to callers."""


class InvalidFieldError(ApiError, ValueError):
    """A request field is malformed; the message starts with its path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


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


def field_path(prefix: str, loc: tuple[int | str, ...], renames: Mapping[str, str]) -> str:
    """The request path of a pydantic error's location under `prefix`: `a.b[0].c`, with the
    domain names in `renames` given their request names."""
    path = prefix
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{renames.get(part, part)}"
    return path.removeprefix(".") or "request"


def validated(
    model: type[M], fields: dict[str, Any], prefix: str, renames: Mapping[str, str] | None = None
) -> M:
    """`model` made of `fields`; InvalidFieldError naming the first field it refuses."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = field_path(prefix, first["loc"], renames or {})
        raise InvalidFieldError(path, first["msg"]) from exc
