"""The API against hostile callers: every refusal of a token or a role is logged with the method
and the reason but never the token; oversize requests and jobs are refused with their status
and the server keeps serving."""

from __future__ import annotations

import logging

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.api.server import MAX_REQUEST_BYTES, SERVICE_NAME
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from streams.serde import MAX_MESSAGE_BYTES
from tests.idlefleet.conftest import Tokens, job_spec, rpc_error

UNKNOWN_TOKEN = "unknown-token-7d41c0e9b2a8f653"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "idlefleet.api.auth" and r.levelno == logging.WARNING
    ]


@pytest.mark.parametrize(
    ("metadata", "code", "reason"),
    [
        ((), grpc.StatusCode.UNAUTHENTICATED, "no bearer token in authorization"),
        ((("authorization", "Basic dXNlcjpwYXNz"),), grpc.StatusCode.UNAUTHENTICATED, "no bearer"),
        (
            (("authorization", f"Bearer {UNKNOWN_TOKEN}"),),
            grpc.StatusCode.UNAUTHENTICATED,
            "unknown bearer token",
        ),
    ],
    ids=["none", "basic", "unknown"],
)
def test_a_missing_or_unknown_token_is_refused_and_logged_without_the_token(
    stub: pb_grpc.FleetPlannerStub,
    caplog: pytest.LogCaptureFixture,
    metadata: tuple[tuple[str, str], ...],
    code: grpc.StatusCode,
    reason: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    error = rpc_error(lambda: stub.GetFleetStatus(pb.GetFleetStatusRequest(), metadata=metadata))
    assert error.code() is code and reason in error.details()
    [logged] = _refusals(caplog)
    assert f"/{SERVICE_NAME}/GetFleetStatus" in logged and reason in logged
    assert code.name in logged
    assert UNKNOWN_TOKEN not in caplog.text and "dXNlcjpwYXNz" not in caplog.text


def test_a_role_too_small_is_refused_and_logged_without_the_token(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    viewer = tokens.metadata(Role.VIEWER)
    error = rpc_error(
        lambda: stub.CancelJob(pb.CancelJobRequest(job_id="embed-1"), metadata=viewer)
    )
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    [logged] = _refusals(caplog)
    assert logged == (
        f"refused /{SERVICE_NAME}/CancelJob: CancelJob needs role operator, "
        "the token has viewer (PERMISSION_DENIED)"
    )
    for token in tokens.by_role.values():
        assert token not in caplog.text


def test_an_allowed_call_logs_no_refusal(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stub.GetFleetStatus(pb.GetFleetStatusRequest(), metadata=tokens.metadata(Role.VIEWER))
    assert _refusals(caplog) == []
    assert tokens.by_role[Role.VIEWER] not in caplog.text


def test_a_request_over_the_size_limit_is_refused_and_the_server_keeps_serving(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    uri = "file:///srv/in/" + "x" * 1_975  # 1995 characters with the index
    huge = job_spec("huge", shards=0, input_uris=[f"{uri}{i:05d}" for i in range(2_200)])
    request = pb.SubmitJobRequest(job=huge)
    assert request.ByteSize() > MAX_REQUEST_BYTES
    error = rpc_error(lambda: stub.SubmitJob(request, metadata=operator))
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details()
    status = stub.GetFleetStatus(pb.GetFleetStatusRequest(), metadata=operator)
    assert status.vehicles_known == 4


def test_a_job_larger_than_a_kafka_message_is_invalid(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    """Readers of the jobs topic dead-letter records over MAX_MESSAGE_BYTES: such a job is
    refused at the API, not accepted and then lost."""
    operator = tokens.metadata(Role.OPERATOR)
    uri = "file:///srv/in/" + "x" * 1_975  # 1995 characters with the index
    big = job_spec("big", shards=0, input_uris=[f"{uri}{i:05d}" for i in range(600)])
    request = pb.SubmitJobRequest(job=big)
    assert MAX_MESSAGE_BYTES < request.ByteSize() < MAX_REQUEST_BYTES
    error = rpc_error(lambda: stub.SubmitJob(request, metadata=operator))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (
        error.details().startswith("job: is ") and f"{MAX_MESSAGE_BYTES} allowed" in error.details()
    )
    missing = rpc_error(lambda: stub.GetJob(pb.GetJobRequest(job_id="big"), metadata=operator))
    assert missing.code() is grpc.StatusCode.NOT_FOUND
