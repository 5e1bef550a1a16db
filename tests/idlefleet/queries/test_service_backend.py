"""The adapter over the planner service: jobs go in through Kafka, plans come out as published."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.fleet_status import current_scenario
from idlefleet.queries.service_backend import ServiceBackend
from idlefleet.sim.clock import SteppedClock
from optimizer import plan_scenario
from optimizer.plan import PlanSnapshot
from streams.catalog import T0
from streams.clients import KafkaSettings
from streams.producer import Publisher
from tests.idlefleet.conftest import (
    KAFKA_WAIT_S,
    SETTINGS,
    SITES,
    ReadingPlanner,
    ServerFactory,
    Tokens,
    job_spec,
    rpc_error,
)
from tests.streams.factories import telemetry


@pytest.fixture
def service_stub(
    planner: ReadingPlanner,
    kafka_settings: KafkaSettings,
    serve: ServerFactory,
    clock: SteppedClock,
) -> Iterator[pb_grpc.FleetPlannerStub]:
    publisher = Publisher(kafka_settings)
    backend = ServiceBackend(planner, publisher, clock, poll_s=0.02).start()
    _, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.FleetPlannerStub(channel)
    backend.close()
    publisher.close()


def _until(predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + KAFKA_WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_submitted_job_reaches_the_planner_through_kafka(
    service_stub: pb_grpc.FleetPlannerStub, planner: ReadingPlanner, tokens: Tokens
) -> None:
    operator = tokens.metadata(Role.OPERATOR)
    request = pb.SubmitJobRequest(job=job_spec("k-job"))
    submitted = service_stub.SubmitJob(request, metadata=operator)
    assert submitted.created
    assert submitted.job.state in (pb.JOB_STATE_PENDING, pb.JOB_STATE_OPEN)
    again = service_stub.SubmitJob(request, metadata=operator)
    assert not again.created
    _until(lambda: planner.ledger.job("k-job") is not None)
    status = service_stub.GetJob(pb.GetJobRequest(job_id="k-job"), metadata=operator)
    assert status.state == pb.JOB_STATE_OPEN and status.executions_total == 3
    conflict = pb.SubmitJobRequest(job=job_spec("k-job", shards=5))
    error = rpc_error(lambda: service_stub.SubmitJob(conflict, metadata=operator))
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS
    cancelled = service_stub.CancelJob(pb.CancelJobRequest(job_id="k-job"), metadata=operator)
    assert cancelled.state == pb.JOB_STATE_CANCELLED and planner.cancelled_jobs == {"k-job"}
    listed = service_stub.ListJobs(pb.ListJobsRequest(), metadata=operator)
    assert [s.job.job_id for s in listed.jobs] == ["k-job"]


def test_each_new_service_plan_is_published_once(
    service_stub: pb_grpc.FleetPlannerStub, planner: ReadingPlanner, tokens: Tokens
) -> None:
    viewer = tokens.metadata(Role.VIEWER)
    stream = service_stub.WatchPlan(pb.WatchPlanRequest(), metadata=viewer, timeout=KAFKA_WAIT_S)
    what_if = service_stub.WhatIf(pb.WhatIfRequest(), metadata=tokens.metadata(Role.OPERATOR))
    assert what_if.plan.vehicles == 4
    for revision in (1, 2):
        scenario = current_scenario(T0, planner.state, [], SITES, SETTINGS)
        planner.current_plan = PlanSnapshot(plan_scenario(scenario, "immediate"), scenario)
        view = next(stream)
        assert view.plan.revision == revision and view.plan.strategy == pb.STRATEGY_IMMEDIATE
    stream.cancel()
    status = service_stub.GetFleetStatus(pb.GetFleetStatusRequest(), metadata=viewer)
    assert status.vehicles_parked == 4 and status.plan.revision == 2


def test_the_fleet_status_is_reused_until_it_is_max_age_old(
    planner: ReadingPlanner, kafka_settings: KafkaSettings, clock: SteppedClock
) -> None:
    publisher = Publisher(kafka_settings)
    backend = ServiceBackend(planner, publisher, clock, status_max_age_s=0.5)
    try:
        first = backend.fleet_status()
        planner.state.apply_telemetry(telemetry("car-new", event_time=T0 + timedelta(minutes=1)))
        assert backend.fleet_status() is first  # within its age: the same walk of the fleet
        time.sleep(0.5)
        fresh = backend.fleet_status()
        assert fresh.vehicles_known == first.vehicles_known + 1
        assert fresh.vehicles_parked == first.vehicles_parked + 1
    finally:
        publisher.close()
