"""GetPlan, GetFleetStatus and WatchPlan over a real channel."""

from __future__ import annotations

import threading
from datetime import timedelta

import grpc
import pytest

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.board import PlanBoard
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.sim.clock import SteppedClock
from streams.catalog import T0
from tests.idlefleet.conftest import SETTINGS, SITES, ServerFactory, Tokens, fill, rpc_error
from tests.streams.factories import job

TIMEOUT_S = 10.0


def window(start_h: float | None = None, end_h: float | None = None) -> pb.TimeWindow:
    out = pb.TimeWindow()
    if start_h is not None:
        out.start.FromDatetime(T0 + timedelta(hours=start_h))
    if end_h is not None:
        out.end.FromDatetime(T0 + timedelta(hours=end_h))
    return out


def test_the_fleet_plan_sums_its_sites_and_matches_the_plan(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    viewer = tokens.metadata(Role.VIEWER)
    fleet = stub.GetPlan(pb.GetPlanRequest(), metadata=viewer)
    assert fleet.plan.plan_id == "plan-2020-06-01T12:00:00Z" and fleet.plan.revision == 1
    assert fleet.plan.strategy == pb.STRATEGY_MILP and fleet.plan.slots == 16
    assert fleet.plan.vehicles == 4 and fleet.plan.kpis.grid_energy_kwh > 0
    assert len(fleet.slots) == 16
    assert fleet.slots[1].start.ToDatetime(tzinfo=T0.tzinfo) == T0 + timedelta(minutes=15)
    sites = [
        stub.GetPlan(pb.GetPlanRequest(site_id=site.site_id), metadata=viewer) for site in SITES
    ]
    views = backend.board.views
    assert views is not None
    plan = views.plan
    for s, slot in enumerate(fleet.slots):
        assert slot.charge_power_kw == pytest.approx(sum(p.slots[s].charge_power_kw for p in sites))
        assert slot.grid_import_kw == pytest.approx(
            sum(plan.grid_import_kw[site.site_id][s] for site in SITES)
        )
        assert slot.parked_vehicles == sum(p.slots[s].parked_vehicles for p in sites)
        assert sum(w.shards for w in slot.work) == sum(
            a.shards for a in plan.assignments if a.slot == s
        )
    assert sum(w.shards for slot in fleet.slots for w in slot.work) == 4


def test_a_vehicle_plan_is_its_schedule(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    view = stub.GetPlan(
        pb.GetPlanRequest(vehicle_id="car-a"), metadata=tokens.metadata(Role.VIEWER)
    )
    views = backend.board.views
    assert views is not None
    schedule = views.plan.vehicles["car-a"]
    assert [s.charge_power_kw for s in view.slots] == pytest.approx(list(schedule.charge_kw))
    assert [s.running_vehicles for s in view.slots] == list(schedule.running)
    parked = [s.HasField("energy_start_kwh") for s in view.slots]
    assert parked == [True] * 12 + [False] * 4  # car-a leaves after 3 h
    assert view.slots[0].energy_start_kwh == 30.0
    assert not any(s.HasField("grid_import_kw") for s in view.slots)


def test_a_window_selects_the_slots_it_overlaps(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens
) -> None:
    viewer = tokens.metadata(Role.VIEWER)
    view = stub.GetPlan(pb.GetPlanRequest(window=window(0.3, 1.0)), metadata=viewer)
    starts = [s.start.ToDatetime(tzinfo=T0.tzinfo) - T0 for s in view.slots]
    assert starts == [timedelta(minutes=m) for m in (15, 30, 45)]
    assert not stub.GetPlan(pb.GetPlanRequest(window=window(10, 12)), metadata=viewer).slots
    assert len(stub.GetPlan(pb.GetPlanRequest(window=window(end_h=1)), metadata=viewer).slots) == 4


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        (pb.GetPlanRequest(window=window(2, 1)), grpc.StatusCode.INVALID_ARGUMENT, "window.end"),
        (pb.GetPlanRequest(site_id=""), grpc.StatusCode.INVALID_ARGUMENT, "site_id"),
        (pb.GetPlanRequest(vehicle_id="car-x"), grpc.StatusCode.NOT_FOUND, "unknown vehicle"),
        (pb.GetPlanRequest(site_id="paris"), grpc.StatusCode.NOT_FOUND, "unknown site"),
    ],
)
def test_bad_plan_requests(
    stub: pb_grpc.FleetPlannerStub,
    tokens: Tokens,
    request_: pb.GetPlanRequest,
    code: grpc.StatusCode,
    field: str,
) -> None:
    error = rpc_error(lambda: stub.GetPlan(request_, metadata=tokens.metadata(Role.VIEWER)))
    assert error.code() is code and error.details().startswith(field), error.details()


def test_without_a_plan_reads_fail_the_precondition(
    serve: ServerFactory, clock: SteppedClock, tokens: Tokens
) -> None:
    backend = LocalBackend(SITES, SETTINGS, clock)
    _, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        viewer = tokens.metadata(Role.VIEWER)
        error = rpc_error(lambda: stub.GetPlan(pb.GetPlanRequest(), metadata=viewer))
        assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
        status = stub.GetFleetStatus(pb.GetFleetStatusRequest(), metadata=viewer)
        assert not status.HasField("plan") and not status.HasField("latest_telemetry")


def test_fleet_status_counts_cars_sites_and_jobs(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    backend.cancelled.add("embed-1")
    status = stub.GetFleetStatus(pb.GetFleetStatusRequest(), metadata=tokens.metadata(Role.VIEWER))
    assert (status.vehicles_known, status.vehicles_parked, status.vehicles_participating) == (
        4,
        4,
        3,
    )
    berlin, london = status.sites
    assert (berlin.site_id, berlin.vehicles_parked, berlin.energy_kwh) == ("berlin-depot", 2, 80.0)
    assert (london.vehicles_participating, london.charger_kw) == (1, 22.0)
    assert status.jobs.cancelled == 1 and status.jobs.open == 0
    assert status.plan.revision == 1
    assert status.latest_telemetry.ToDatetime(tzinfo=T0.tzinfo) == T0


def test_watch_plan_streams_the_current_plan_then_each_new_one(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    stream = stub.WatchPlan(
        pb.WatchPlanRequest(site_id="berlin-depot"),
        metadata=tokens.metadata(Role.VIEWER),
        timeout=TIMEOUT_S,
    )
    first = next(stream)
    assert first.plan.revision == 1 and len(first.slots) == 16
    backend.submit_job(job("late-job", shards=8))
    backend.replan()
    second = next(stream)
    assert second.plan.revision == 2
    assert sum(w.shards for s in second.slots for w in s.work) > sum(
        w.shards for s in first.slots for w in s.work
    )
    stream.cancel()


def test_plan_watchers_are_bounded(
    serve: ServerFactory, clock: SteppedClock, tokens: Tokens
) -> None:
    backend = LocalBackend(SITES, SETTINGS, clock, PlanBoard(max_watchers=1))
    fill(backend.state)
    backend.replan()
    _, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        viewer = tokens.metadata(Role.VIEWER)
        first = stub.WatchPlan(pb.WatchPlanRequest(), metadata=viewer, timeout=TIMEOUT_S)
        next(first)
        second = stub.WatchPlan(pb.WatchPlanRequest(), metadata=viewer, timeout=TIMEOUT_S)
        error = rpc_error(lambda: next(second))
        assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        first.cancel()


def test_shutdown_ends_watches_as_unavailable_and_stops_promptly(
    serve: ServerFactory, backend: LocalBackend, tokens: Tokens
) -> None:
    server, port = serve(backend)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.FleetPlannerStub(channel)
        stream = stub.WatchPlan(
            pb.WatchPlanRequest(), metadata=tokens.metadata(Role.VIEWER), timeout=TIMEOUT_S
        )
        next(stream)
        stopping = threading.Thread(target=server.stop, kwargs={"grace_s": 30.0})
        stopping.start()
        error = rpc_error(lambda: next(stream))
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        stopping.join(timeout=5.0)
        assert not stopping.is_alive(), "graceful stop waited for the watch"
