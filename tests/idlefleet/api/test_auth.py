"""Bearer tokens and roles: the token file, and every refusal over a real channel."""

from __future__ import annotations

import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from idlefleet.api.auth import (
    REFLECTION_METHOD,
    REQUIRED_ROLES,
    Principal,
    Role,
    TokenFileError,
    TokenTable,
)
from idlefleet.api.server import SERVICE_NAME
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from tests.idlefleet.conftest import Tokens, rpc_error

SECRET = "s3cret-token-0123456789"


def test_a_token_file_maps_tokens_to_principals_and_roles() -> None:
    text = f"# comment\n\n{SECRET} operator utility-eon\n{'x' * 20} VIEWER\n"
    table = TokenTable.parse(text)
    assert table.principal_of(SECRET) == Principal("utility-eon", Role.OPERATOR)
    viewer = table.principal_of("x" * 20)
    assert viewer is not None and viewer.role is Role.VIEWER
    assert viewer.name.startswith("viewer-") and "x" * 8 not in viewer.name
    assert table.principal_of(SECRET + "x") is None
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"{SECRET}\n", "line 1: expected TOKEN ROLE [NAME]"),
        (f"{SECRET} admin root extra\n", "line 1: expected TOKEN ROLE [NAME]"),
        (
            f"# c\n{SECRET} root\n",
            "line 2: role must be one of viewer, operator, admin or owner:VEHICLE_ID",
        ),
        (f"{SECRET} owner\n", "line 1: an owner's role is owner:VEHICLE_ID"),
        (f"{SECRET} owner:../etc\n", "line 1: an owner's role is owner:VEHICLE_ID"),
        (f"{SECRET} viewer:car-7\n", "line 1: role must be one of"),
        ("tiny-tok admin\n", "line 1: token shorter than 16 characters"),
        (f"{SECRET} admin\n{SECRET} viewer\n", "line 2: same token as line 1"),
        ("# nothing\n", "no tokens"),
    ],
)
def test_a_bad_token_file_names_the_line_and_never_the_token(text: str, problem: str) -> None:
    with pytest.raises(TokenFileError) as error:
        TokenTable.parse(text, "tokens.txt")
    assert problem in str(error.value)
    assert SECRET not in str(error.value) and "tiny-tok" not in str(error.value)


def test_every_rpc_and_reflection_need_a_role_and_reads_need_only_viewer() -> None:
    methods = pb.DESCRIPTOR.services_by_name["FleetPlanner"].methods
    rpcs = {f"/{SERVICE_NAME}/{m.name}" for m in methods}
    assert rpcs | {REFLECTION_METHOD} == set(REQUIRED_ROLES)
    writes = {"SubmitJob", "CancelJob", "WhatIf", "SubmitDemandResponse"}
    owners = {"GetOwnerPreferences", "SetOwnerPreferences"}  # (and the car's owner)
    registry_changes = {"EnrollKey", "RevokeKey", "RegisterVehicle"}
    for method, role in REQUIRED_ROLES.items():
        name = method.rpartition("/")[2]
        expected = Role.VIEWER
        if name in writes | owners:
            expected = Role.OPERATOR
        elif name in registry_changes:
            expected = Role.ADMIN
        assert role is expected, name


def test_no_or_an_unknown_token_is_unauthenticated(
    stub: pb_grpc.FleetPlannerStub, caplog: pytest.LogCaptureFixture
) -> None:
    request = pb.GetFleetStatusRequest()
    assert rpc_error(lambda: stub.GetFleetStatus(request)).code() is grpc.StatusCode.UNAUTHENTICATED
    for header in ("Bearer not-a-known-token-at-all", "Basic abc", "Bearer "):
        metadata = (("authorization", header),)
        with caplog.at_level(logging.DEBUG):
            error = rpc_error(lambda: stub.GetFleetStatus(request, metadata=metadata))  # noqa: B023
            code = error.code()
        assert code is grpc.StatusCode.UNAUTHENTICATED
    assert "not-a-known-token" not in caplog.text


def test_a_stream_is_refused_like_a_unary_call(stub: pb_grpc.FleetPlannerStub) -> None:
    stream = stub.WatchPlan(pb.WatchPlanRequest())
    assert rpc_error(lambda: next(stream)).code() is grpc.StatusCode.UNAUTHENTICATED


def test_a_viewer_reads_but_may_not_submit_cancel_or_plan(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    viewer = tokens.metadata(Role.VIEWER)
    assert stub.GetJob(pb.GetJobRequest(job_id="embed-1"), metadata=viewer).job.job_id == "embed-1"
    denied = [
        lambda: stub.SubmitJob(pb.SubmitJobRequest(), metadata=viewer),
        lambda: stub.CancelJob(pb.CancelJobRequest(job_id="embed-1"), metadata=viewer),
        lambda: stub.WhatIf(pb.WhatIfRequest(), metadata=viewer),
    ]
    for call in denied:
        error = rpc_error(call)
        assert error.code() is grpc.StatusCode.PERMISSION_DENIED
        assert "needs role operator, the token has viewer" in error.details()


def test_an_operator_and_an_admin_may_cancel(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    for role in (Role.OPERATOR, Role.ADMIN):
        request = pb.CancelJobRequest(job_id="embed-1")
        status = stub.CancelJob(request, metadata=tokens.metadata(role))
        assert status.state == pb.JOB_STATE_CANCELLED


def test_health_needs_no_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    response = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    assert response.status == health_pb2.HealthCheckResponse.SERVING
