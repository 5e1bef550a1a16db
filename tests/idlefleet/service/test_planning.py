"""From fleet state to a scenario the optimizer accepts, and from a plan back to dispatch."""

from __future__ import annotations

from datetime import timedelta

from idlefleet.service.dispatches import slot_dispatches
from idlefleet.service.inputs import JobDemand, rolling_scenario
from idlefleet.settings import PlannerSettings
from idlefleet.sim.catalog import demo_sites
from optimizer import check_plan, load_scenario, plan_scenario, scenario_to_dict
from streams.catalog import T0
from streams.messages import Telemetry
from streams.state import FleetState
from tests.streams.factories import grid_signal, job, telemetry

SETTINGS = PlannerSettings(slot_minutes=15, horizon_hours=4)
SITES = demo_sites(1, 2)  # berlin-depot, DE


def state_with(*cars: Telemetry, hours: float = 6) -> FleetState:
    """The cars, and DE intensity from T0 for `hours`: 100 and 300 g/kWh by turns."""
    state = FleetState()
    for car in cars:
        state.apply_telemetry(car)
    state.apply_grid(grid_signal([300.0 if s % 2 else 100.0 for s in range(int(hours * 4))]))
    return state


def test_the_scenario_starts_now_and_holds_the_parked_cars() -> None:
    now = T0 + timedelta(minutes=30)
    away = telemetry("car-away", site_id=None, plugged_in=False)
    built = rolling_scenario(now, state_with(telemetry("car-a"), away), SITES, [], SETTINGS)
    assert built is not None
    # What the service sends its planner process: the written document, loaded and checked.
    scenario = load_scenario(scenario_to_dict(built))
    assert scenario == built
    assert scenario.horizon.start == now and scenario.horizon.slots == 16
    assert [v.id for v in scenario.vehicles] == ["car-a"]
    # The intensity is read from the signal at the right offset (slot 2 of the signal).
    assert scenario.regions[0].intensity_g_per_kwh[:2] == (100.0, 300.0)


def test_the_horizon_shrinks_to_what_the_intensity_signal_covers() -> None:
    scenario = rolling_scenario(T0, state_with(telemetry("car-a"), hours=2), SITES, [], SETTINGS)
    assert scenario is not None and scenario.horizon.slots == 8
    assert rolling_scenario(T0, FleetState(), SITES, [], SETTINGS) is None


def test_open_work_becomes_one_job_per_replica_count() -> None:
    demands = [JobDemand(job(replicas=2), {2: 3, 1: 1})]
    scenario = rolling_scenario(
        T0, state_with(telemetry("car-a"), telemetry("car-b")), SITES, demands, SETTINGS
    )
    assert scenario is not None
    jobs = {j.id: (j.shards, j.replicas) for j in scenario.jobs}
    assert jobs == {"embed-1@r1": (1, 1), "embed-1@r2": (3, 2)}


def test_a_plan_maps_back_to_per_car_dispatch_under_ledger_job_ids() -> None:
    state = state_with(telemetry("car-a"), telemetry("car-b"))
    demands = [JobDemand(job(replicas=2), {2: 3, 1: 1})]
    scenario = rolling_scenario(T0, state, SITES, demands, SETTINGS)
    assert scenario is not None
    plan = plan_scenario(scenario, "milp")
    assert plan.is_feasible and check_plan(scenario, plan) == []
    dispatched = [d for s in range(scenario.horizon.slots) for d in slot_dispatches(plan, s)]
    assert {job_id for d in dispatched for job_id in d.shards_by_job} == {"embed-1"}
    assert sum(sum(d.shards_by_job.values()) for d in dispatched) == 7


def test_the_scenario_does_not_depend_on_the_order_jobs_arrived_in() -> None:
    state = state_with(telemetry("car-a"))
    first = JobDemand(job(), {1: 4})
    second = JobDemand(job().model_copy(update={"job_id": "embed-0"}), {1: 4})
    assert rolling_scenario(T0, state, SITES, [first, second], SETTINGS) == rolling_scenario(
        T0, state, SITES, [second, first], SETTINGS
    )
