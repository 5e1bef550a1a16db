"""From fleet state to a scenario the optimizer accepts, and from a plan back to dispatch."""

from __future__ import annotations

from datetime import timedelta

from executor.dispatch import SlotDispatch
from idlefleet.service.dispatches import slot_dispatches, surplus_only
from idlefleet.service.inputs import JobDemand, rolling_inputs, rolling_scenario
from idlefleet.settings import PlannerSettings
from idlefleet.sim.catalog import demo_sites
from optimizer import check_plan, load_scenario, plan_scenario, scenario_to_dict
from streams.catalog import T0
from streams.messages import (
    ConsentRules,
    DemandResponseEvent,
    MeasuredState,
    OwnerPreferences,
    SolarForecast,
    Telemetry,
    VehicleRecord,
)
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


def sourced_car(state: FleetState, vehicle_id: str, **rules: object) -> None:
    """A car known through its three sources, parked at berlin-depot with 30 of 60 kWh."""
    state.apply_record(
        VehicleRecord(
            vehicle_id=vehicle_id, updated_at=T0, battery_kwh=60.0, charger_kw=11.0, compute_kw=0.3
        )
    )
    state.apply_preferences(
        OwnerPreferences(
            vehicle_id=vehicle_id,
            updated_at=T0,
            target_kwh=50.0,
            rules=ConsentRules.model_validate(rules),
        )
    )
    state.apply_measured(
        MeasuredState(
            vehicle_id=vehicle_id,
            event_time=T0,
            source="car",
            site_id="berlin-depot",
            plugged_in=True,
            energy_kwh=30.0,
        )
    )


def test_a_car_whose_charger_ignores_profiles_is_planned_as_load_at_full_power() -> None:
    state = state_with()
    sourced_car(state, "car-a")
    sourced_car(state, "car-b")
    state.apply_dr_event(
        DemandResponseEvent(
            event_id="cap",
            site_id="berlin-depot",
            start=T0,
            end=T0 + timedelta(hours=1),
            max_import_kw=30.0,
        )
    )
    state.apply_measured(
        MeasuredState(vehicle_id="car-b", event_time=T0, source="ocpp:cs/1", controllable=False)
    )
    inputs = rolling_inputs(T0, state, SITES, [], SETTINGS)
    assert inputs is not None
    scenario = inputs.scenario
    assert [v.id for v in scenario.vehicles] == ["car-a"]
    assert scenario.sites[0].grid_limit_kw == SITES[0].grid_limit_kw - 11.0
    assert scenario.dr_events[0].max_import_kw == 30.0 - 11.0
    notes = {note.vehicle_id: note for note in inputs.data_notes}
    assert not notes["car-b"].controllable and notes["car-a"].controllable


def test_a_car_that_lacks_data_is_noted_and_not_planned() -> None:
    state = state_with()
    state.apply_measured(
        MeasuredState(
            vehicle_id="car-x",
            event_time=T0,
            source="ocpp:cs/2",
            site_id="berlin-depot",
            plugged_in=True,
            power_kw=7.0,
        )
    )
    inputs = rolling_inputs(T0, state, SITES, [], SETTINGS)
    assert inputs is not None and inputs.scenario.vehicles == ()
    (note,) = inputs.data_notes
    assert "fleet registry entry (battery, charger, compute)" in note.lacks
    assert inputs.scenario.sites[0].grid_limit_kw == SITES[0].grid_limit_kw - 7.0


def test_solar_surplus_only_consents_only_when_the_site_has_pv() -> None:
    state = state_with()
    sourced_car(state, "car-a", solar_surplus_only=True)
    inputs = rolling_inputs(T0, state, SITES, [], SETTINGS)
    assert inputs is not None
    assert not inputs.scenario.vehicles[0].participating  # no PV forecast: no surplus
    state.apply_solar(
        SolarForecast(
            site_id="berlin-depot",
            issued_at=T0,
            start=T0,
            slot_minutes=15,
            source="test",
            pv_kw=[20.0] * 24,
        )
    )
    inputs = rolling_inputs(T0, state, SITES, [], SETTINGS)
    assert inputs is not None and inputs.scenario.vehicles[0].participating


def test_solar_surplus_only_cars_get_no_work_in_slots_with_import() -> None:
    work = SlotDispatch("car-a", 0.0, {"embed-1": 1})
    other = SlotDispatch("car-b", 0.0, {"embed-1": 1})
    sites = {"car-a": "berlin-depot", "car-b": "berlin-depot"}
    importing = surplus_only([work, other], {"car-a"}, sites, {"berlin-depot": 3.0})
    assert [dict(d.shards_by_job) for d in importing] == [{}, {"embed-1": 1}]
    on_pv = surplus_only([work, other], {"car-a"}, sites, {"berlin-depot": 0.0})
    assert [dict(d.shards_by_job) for d in on_pv] == [{"embed-1": 1}, {"embed-1": 1}]
