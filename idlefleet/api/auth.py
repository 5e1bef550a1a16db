"""Bearer tokens mapped to principals and roles, checked by a server interceptor before any
servicer runs.

The token file has one `TOKEN ROLE [NAME]` per line (blank lines and `#` comments are
skipped); NAME is the principal the token speaks for (tokens may share one, as when one is
rotated), by default the role and the first 8 hex digits of the token's SHA-256. Only
SHA-256 digests of the tokens are kept, each presented token is compared with every digest in
constant time, and no token ever reaches a log or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16


class Role(IntEnum):
    """Ordered: each role may do what the ones below it may."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3


@dataclass(frozen=True)
class Principal:
    """Who a token speaks for, and with which role."""

    name: str
    role: Role


_SERVICE = pb.DESCRIPTOR.services_by_name["FleetPlanner"].full_name
#: Reflection, when served: the schema to callers with a token.
REFLECTION_METHOD = f"/{reflection.SERVICE_NAME}/ServerReflectionInfo"
#: The least role each method needs; a method missing here needs admin.
REQUIRED_ROLES: Mapping[str, Role] = {
    REFLECTION_METHOD: Role.VIEWER,
    **{
        f"/{_SERVICE}/{method}": role
        for method, role in {
            "SubmitJob": Role.OPERATOR,
            "GetJob": Role.VIEWER,
            "CancelJob": Role.OPERATOR,
            "ListJobs": Role.VIEWER,
            "GetJobOutputs": Role.VIEWER,
            "GetPlan": Role.VIEWER,
            "GetFlexibility": Role.VIEWER,
            "WhatIf": Role.OPERATOR,
            "GetFleetStatus": Role.VIEWER,
            "WatchPlan": Role.VIEWER,
            "SubmitDemandResponse": Role.OPERATOR,
            "EnrollKey": Role.ADMIN,
            "RevokeKey": Role.ADMIN,
            "ListKeys": Role.VIEWER,
        }.items()
    },
}
#: Services anyone may call: health checks.
PUBLIC_SERVICES = frozenset({health_pb2.DESCRIPTOR.services_by_name["Health"].full_name})


class TokenFileError(ValueError):
    """A token file that cannot be used; the message names the line, never the token."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _principal(token: str, role: Role, name: str | None = None) -> Principal:
    return Principal(name or f"{role.name.lower()}-{_digest(token).hex()[:8]}", role)


class TokenTable:
    """Which principal and role each bearer token has; entries are (TOKEN, ROLE[, NAME])."""

    def __init__(self, entries: Iterable[tuple[str, Role] | tuple[str, Role, str]]) -> None:
        self._entries = tuple((_digest(entry[0]), _principal(*entry)) for entry in entries)

    @classmethod
    def parse(cls, text: str, source: str = "token file") -> TokenTable:
        entries: list[tuple[str, Role, str]] = []
        seen: dict[bytes, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            where = f"{source} line {number}"
            if len(parts) not in (2, 3):
                raise TokenFileError(f"{where}: expected TOKEN ROLE [NAME]")
            token, role_name, name = (*parts, "")[:3]
            try:
                role = Role[role_name.upper()]
            except KeyError:
                roles = ", ".join(r.name.lower() for r in Role)
                raise TokenFileError(f"{where}: role must be one of {roles}") from None
            if len(token) < MIN_TOKEN_CHARS:
                raise TokenFileError(f"{where}: token shorter than {MIN_TOKEN_CHARS} characters")
            digest = _digest(token)
            if digest in seen:
                raise TokenFileError(f"{where}: same token as line {seen[digest]}")
            seen[digest] = number
            entries.append((token, role, name))
        if not entries:
            raise TokenFileError(f"{source}: no tokens")
        return cls(entries)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TokenFileError(f"{path}: {exc.strerror}") from exc
        return cls.parse(text, str(path))

    def principal_of(self, token: str) -> Principal | None:
        """The token's principal, or None; the time taken does not depend on which entry
        matches."""
        presented = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(presented, digest):
                found = principal
        return found

    def caller(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal | None:
        """The principal of the bearer token in a call's metadata, or None."""
        token = _bearer_token(metadata)
        return None if token is None else self.principal_of(token)


def _bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str) -> Any:
    """A handler of the same kind as `handler` that ends the call with `code`."""

    def refuse(request: object, context: grpc.ServicerContext) -> None:
        context.abort(code, details)

    factories: Mapping[tuple[bool, bool], Callable[..., Any]] = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    factory = factories[(handler.request_streaming, handler.response_streaming)]
    return factory(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class BearerAuth(grpc.ServerInterceptor):
    """UNAUTHENTICATED without a known token, PERMISSION_DENIED with too small a role."""

    def __init__(self, tokens: TokenTable, required: Mapping[str, Role] = REQUIRED_ROLES) -> None:
        self._tokens = tokens
        self._required = required

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method: str = details.method
        handler = continuation(details)
        if handler is None or method.lstrip("/").partition("/")[0] in PUBLIC_SERVICES:
            return handler
        token = _bearer_token(details.invocation_metadata or ())
        if token is None:
            return _refused(
                handler, method, grpc.StatusCode.UNAUTHENTICATED, "no bearer token in authorization"
            )
        principal = self._tokens.principal_of(token)
        if principal is None:
            code = grpc.StatusCode.UNAUTHENTICATED
            return _refused(handler, method, code, "unknown bearer token")
        role = principal.role
        needed = self._required.get(method, Role.ADMIN)
        if role < needed:
            name = method.rpartition("/")[2]
            return _refused(
                handler,
                method,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{name} needs role {needed.name.lower()}, the token has {role.name.lower()}",
            )
        return handler


def _refused(
    handler: grpc.RpcMethodHandler, method: str, code: grpc.StatusCode, reason: str
) -> Any:
    """The refusal of a call, logged with the method and the reason (never the token)."""
    log.warning("refused %s: %s (%s)", method, reason, code.name)
    return _refusal(handler, code, reason)
