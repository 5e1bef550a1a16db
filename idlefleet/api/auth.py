"""Bearer tokens mapped to principals and roles, checked by a server interceptor before any
servicer runs.

The token file has one `TOKEN ROLE [NAME]` per line (blank lines and `#` comments are
skipped); ROLE is viewer, operator, admin or `owner:VEHICLE_ID`; NAME is the principal the
token speaks for (tokens may share one, as when one is rotated), by default the role (with
the car, for an owner) and the first 8 hex digits of the token's SHA-256. Only SHA-256
digests of the tokens are kept, each presented token is compared with every digest in
constant time, and no token ever reaches a log or an error message.

An owner token speaks for one car: it may call only the owner methods (`OWNER_METHODS`), and
only with that car's `vehicle_id` (PERMISSION_DENIED naming the car asked for otherwise). It
ranks below a viewer, so every other method refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection

from idlefleet.api.status import bounded
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.tokens import (
    MIN_TOKEN_CHARS,
    Grant,
    Owner,
    Principal,
    Role,
    TokenFileError,
    TokenTable,
    bearer_token,
    parse_grant,
)

__all__ = [
    "MIN_TOKEN_CHARS",
    "OWNER_METHODS",
    "PUBLIC_SERVICES",
    "REQUIRED_ROLES",
    "BearerAuth",
    "Grant",
    "Owner",
    "Principal",
    "Role",
    "TokenFileError",
    "TokenTable",
    "parse_grant",
]

log = logging.getLogger(__name__)

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
            "GetOwnerPreferences": Role.OPERATOR,
            "SetOwnerPreferences": Role.OPERATOR,
            "RegisterVehicle": Role.ADMIN,
            "ListVehicles": Role.VIEWER,
        }.items()
    },
}
#: Methods an owner token may call for its own car: the request's `vehicle_id` must name it.
OWNER_METHODS = frozenset(
    f"/{_SERVICE}/{method}" for method in ("GetOwnerPreferences", "SetOwnerPreferences")
)
#: Services anyone may call: health checks.
PUBLIC_SERVICES = frozenset({health_pb2.DESCRIPTOR.services_by_name["Health"].full_name})


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
        token = bearer_token(details.invocation_metadata or ())
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
        if role is Role.OWNER and method in OWNER_METHODS:
            return _owner_scoped(handler, method, principal)
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


def _owner_scoped(handler: grpc.RpcMethodHandler, method: str, owner: Principal) -> Any:
    """`handler` (unary) run only when the request's `vehicle_id` is the owner's car;
    PERMISSION_DENIED naming the car asked for otherwise."""
    behaviour = handler.unary_unary
    name = method.rpartition("/")[2]

    def scoped(request: Any, context: grpc.ServicerContext) -> Any:
        asked: str = request.vehicle_id
        if asked != owner.vehicle_id:
            reason = bounded(
                f"vehicle_id: an owner token of {owner.vehicle_id!r} may not {name} for {asked!r}"
            )
            log.warning("refused %s: %s (PERMISSION_DENIED)", method, reason)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, reason)
        return behaviour(request, context)

    return grpc.unary_unary_rpc_method_handler(
        scoped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
