"""SubmitJob, GetJob, CancelJob and ListJobs over a real channel."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.sim.clock import SteppedClock
from streams.catalog import SHA256_EXAMPLE, T0
from tests.idlefleet.conftest import Tokens, job_spec, rpc_error, stamp


def _without(job: pb.JobSpec, name: str) -> pb.JobSpec:
    job.ClearField(name)
    return job


def test_submitting_is_idempotent_on_the_job_id(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    first = stub.SubmitJob(pb.SubmitJobRequest(job=job_spec()), metadata=operator)
    assert first.created and first.job.state == pb.JOB_STATE_OPEN
    assert first.job.executions_total == 3 and first.job.executions_remaining == 3
    assert first.job.submitted_at.ToDatetime(tzinfo=T0.tzinfo) == T0
    again = stub.SubmitJob(pb.SubmitJobRequest(job=job_spec()), metadata=operator)
    assert not again.created and again.job == first.job
    assert backend.ledger.job_ids == ["embed-1", "new-job"]
    error = rpc_error(
        lambda: stub.SubmitJob(pb.SubmitJobRequest(job=job_spec(shards=4)), metadata=operator)
    )
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("job", "field"),
    [
        (job_spec(model=pb.ModelRef(uri="file:///m.onnx", sha256="not-hex")), "job.model.sha256"),
        (job_spec(job_id="bad/id"), "job.job_id"),
        (job_spec(input_uris=[]), "job.input_uris"),
        (job_spec(input_uris=["file:///a.npy", ""]), "job.input_uris[1]"),
        (job_spec(value_per_shard=-1.0), "job.value_per_shard"),
        (job_spec(site_ids=["ok", "no/slash"]), "job.site_ids[1]"),
        (job_spec(replicas=17), "job.replicas"),
        (_without(job_spec(), "release"), "job.release"),
        (job_spec(deadline=stamp(-1)), "job: "),
    ],
)
def test_a_bad_job_is_an_invalid_argument_naming_the_field(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, job: pb.JobSpec, field: str
) -> None:
    metadata = tokens.metadata(Role.OPERATOR)
    error = rpc_error(lambda: stub.SubmitJob(pb.SubmitJobRequest(job=job), metadata=metadata))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(field), error.details()


def test_get_job_reports_progress_and_the_plan(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    viewer = tokens.metadata(Role.VIEWER)
    status = stub.GetJob(pb.GetJobRequest(job_id="embed-1"), metadata=viewer)
    assert status.state == pb.JOB_STATE_OPEN
    assert status.executions_total == 4 and status.executions_planned == 4
    assert status.job.model.sha256 == SHA256_EXAMPLE
    missing = rpc_error(lambda: stub.GetJob(pb.GetJobRequest(job_id="nope"), metadata=viewer))
    assert missing.code() is grpc.StatusCode.NOT_FOUND
    empty = rpc_error(lambda: stub.GetJob(pb.GetJobRequest(), metadata=viewer))
    assert empty.code() is grpc.StatusCode.INVALID_ARGUMENT and empty.details().startswith("job_id")


def test_a_job_past_its_deadline_expires(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, clock: SteppedClock
) -> None:
    clock.now = T0 + timedelta(hours=5)
    status = stub.GetJob(pb.GetJobRequest(job_id="embed-1"), metadata=tokens.metadata(Role.VIEWER))
    assert status.state == pb.JOB_STATE_EXPIRED
    error = rpc_error(
        lambda: stub.CancelJob(
            pb.CancelJobRequest(job_id="embed-1"), metadata=tokens.metadata(Role.OPERATOR)
        )
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_a_cancelled_job_leaves_the_next_plan(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    cancelled = stub.CancelJob(pb.CancelJobRequest(job_id="embed-1"), metadata=operator)
    assert cancelled.state == pb.JOB_STATE_CANCELLED
    assert stub.CancelJob(pb.CancelJobRequest(job_id="embed-1"), metadata=operator) == cancelled
    backend.replan()
    status = stub.GetJob(pb.GetJobRequest(job_id="embed-1"), metadata=operator)
    assert status.state == pb.JOB_STATE_CANCELLED and status.executions_planned == 0
    missing = rpc_error(lambda: stub.CancelJob(pb.CancelJobRequest(job_id="x"), metadata=operator))
    assert missing.code() is grpc.StatusCode.NOT_FOUND


def test_jobs_are_listed_in_id_order_a_page_at_a_time(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    for job_id in ("c-job", "a-job", "b-job"):
        stub.SubmitJob(pb.SubmitJobRequest(job=job_spec(job_id)), metadata=operator)
    seen, token = [], ""
    while True:
        page = stub.ListJobs(pb.ListJobsRequest(page_size=2, page_token=token), metadata=operator)
        assert page.total_size == 4 and len(page.jobs) <= 2
        seen += [status.job.job_id for status in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert seen == ["a-job", "b-job", "c-job", "embed-1"]
    error = rpc_error(
        lambda: stub.ListJobs(pb.ListJobsRequest(page_token="%%%"), metadata=operator)
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("page_token")
