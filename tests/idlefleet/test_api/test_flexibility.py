"""GetFlexibility: tiny scenarios whose answer is obvious, properties on real plans, and RPCs.

Properties: deferring a car's shed power out of a slot and charging it back as soon as spare
power allows, or adding its add power and charging that much less later, keeps every rule of
the scenario contract; a little more than either breaks one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc
import numpy as np
import pytest

from idlefleet.api.auth import Role
from idlefleet.proto_gen.v1 import fleet_planner_pb2 as pb
from idlefleet.proto_gen.v1 import fleet_planner_pb2_grpc as pb_grpc
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.queries.views import FLEET, FlexibilitySeries, Scope, build_views
from optimizer import Plan, Scenario, check_plan, compute_kpis, load_scenario, objective_value
from optimizer import plan_scenario as plan_of
from optimizer.flexibility import site_spare_kw, vehicle_add_kw, vehicle_shed_kw
from optimizer.plan import PlanSnapshot, VehicleSchedule
from optimizer.plan_arrays import FloatArray, plan_arrays
from tests.optimizer.scenario_factory import car, fleet, tiny, ts

from .conftest import Tokens, rpc_error

SITE = Scope("site", "S")


def flexibility(
    doc: dict[str, Any], strategy: str = "immediate", scope: Scope = SITE
) -> FlexibilitySeries:
    scenario = load_scenario(doc)
    plan = plan_of(scenario, strategy)
    assert plan.is_feasible, plan.reason
    return build_views(PlanSnapshot(plan, scenario), 1).flexibility_series(scope)


def one_car(**fields: Any) -> dict[str, Any]:
    """100 kWh at 50, floor 20, owed 80 after 4 h, 10 kW charger; at once: 10, 10, 10, 0 kW."""
    values: dict[str, Any] = {
        "battery_kwh": 100.0,
        "soc_kwh": 50.0,
        "reserve_kwh": 20.0,
        "target_kwh": 80.0,
        "departure": 4,
        **fields,
    }
    return car(**values)


def test_charging_that_can_wait_is_shed_and_an_idle_charger_adds() -> None:
    f = flexibility(tiny([100.0] * 4, vehicles=[one_car()], grid_limit_kw=50.0))
    assert f.baseline_import_kw == [10.0, 10.0, 10.0, 0.0]
    assert f.shed_power_kw == [10.0, 10.0, 10.0, 0.0]  # made up in the last hour
    assert f.add_power_kw == [0.0, 0.0, 0.0, 10.0]
    assert f.import_cap_kw == [50.0] * 4
    assert (f.parked_vehicles, f.compute_capacity_shards, f.planned_shards) == (
        [1] * 4,
        [1] * 4,
        [0] * 4,
    )


def test_nothing_is_shed_when_a_dr_cap_blocks_the_catch_up() -> None:
    cap = {"id": "dr", "site": "S", "start": ts(3), "end": ts(4), "max_import_kw": 0.0}
    f = flexibility(tiny([100.0] * 4, vehicles=[one_car()], grid_limit_kw=50.0, dr_events=[cap]))
    assert f.baseline_import_kw == [10.0, 10.0, 10.0, 0.0]
    assert f.import_cap_kw == [50.0, 50.0, 50.0, 0.0]
    assert f.shed_power_kw == [0.0] * 4
    assert f.add_power_kw == [0.0] * 4


def test_nothing_is_shed_when_deferring_would_cross_the_reserve() -> None:
    # 4 kW in the cheap first hour lifts the battery to 34 kWh so that 8 kW of compute in the
    # second hour (charging 4 kW meanwhile) ends at the 30 kWh floor: no room to defer either.
    doc = tiny(
        [100.0, 300.0, 300.0, 300.0],
        vehicles=[
            car(soc_kwh=30.0, reserve_kwh=30.0, target_kwh=30.0, charger_kw=4.0, compute_kw=8.0)
        ],
        jobs=[
            {"id": "j", "shards": 1, "value_per_shard": 100.0, "release": ts(1), "deadline": ts(2)}
        ],
    )
    f = flexibility(doc, "milp")
    assert f.baseline_import_kw == pytest.approx([4.0, 4.0, 0.0, 0.0])
    assert f.planned_shards == [0, 1, 0, 0]
    assert f.shed_power_kw == pytest.approx([0.0] * 4)


def test_extra_charging_soaks_up_pv_first_and_stops_at_the_grid_limit() -> None:
    idle = car(battery_kwh=200.0, soc_kwh=80.0, target_kwh=80.0, charger_kw=30.0)
    f = flexibility(tiny([100.0] * 3, vehicles=[idle], grid_limit_kw=5.0, pv_kw=[20.0] * 3))
    assert f.baseline_import_kw == [0.0] * 3
    assert f.add_power_kw == [5.0] * 3  # 30 kW more charging: 20 from PV, 5 of 10 from the grid


def test_a_region_dr_cap_bounds_what_its_sites_add_together() -> None:
    idle: dict[str, Any] = {"soc_kwh": 20.0, "target_kwh": 20.0}
    second_site = {"id": "S2", "region": "R", "grid_limit_kw": 50.0}
    cap = {"id": "dr", "region": "R", "start": ts(0), "end": ts(2), "max_import_kw": 15.0}
    doc = tiny(
        [100.0] * 2,
        vehicles=[car("a", **idle), car("b", site="S2", **idle)],
        grid_limit_kw=50.0,
        extra_sites=[second_site],
        dr_events=[cap],
    )
    assert flexibility(doc).add_power_kw == [10.0, 10.0]
    region = flexibility(doc, scope=Scope("region", "R"))
    assert region.add_power_kw == [15.0, 15.0]
    assert region.import_cap_kw == [15.0, 15.0]
    assert flexibility(doc, scope=FLEET) == region


# --- properties on real plans -------------------------------------------------------------


def _moved(
    plan: Plan, scenario: Scenario, vehicle_id: str, slot: int, delta_kw: float, spare: FloatArray
) -> Plan:
    """The plan with `delta_kw` more charging in `slot`, compensated as soon as possible after."""
    vehicle = scenario.vehicle_by_id[vehicle_id]
    window = scenario.window(vehicle)
    dt_h = scenario.horizon.dt_h
    schedule = plan.vehicles[vehicle_id]
    charge = list(schedule.charge_kw)
    charge[slot] += delta_kw
    owed = -delta_kw
    for t in range(slot + 1, window.last):
        step = (
            min(owed, vehicle.charger_kw - charge[t], spare[t])
            if owed > 0
            else max(owed, -charge[t])
        )
        charge[t] += step
        owed -= step
    soc: list[float | None] = [None] * (scenario.horizon.slots + 1)
    soc[window.first] = vehicle.soc_kwh
    for t in window.slots:
        previous = soc[t]
        assert previous is not None
        drawn = vehicle.compute_kw * schedule.running[t]
        soc[t + 1] = previous + (vehicle.charge_efficiency_frac * charge[t] - drawn) * dt_h
    vehicles = dict(plan.vehicles)
    vehicles[vehicle_id] = VehicleSchedule(tuple(charge), schedule.running, tuple(soc))
    imports = {}
    for site in scenario.sites:
        loads = [
            sum(vehicles[v.id].charge_kw[t] for v in scenario.vehicles if v.site == site.id)
            for t in range(scenario.horizon.slots)
        ]
        imports[site.id] = tuple(
            max(0.0, load - pv) for load, pv in zip(loads, site.pv_kw, strict=True)
        )
    moved = dataclasses.replace(plan, vehicles=vehicles, grid_import_kw=imports)
    return dataclasses.replace(
        moved, kpis=compute_kpis(scenario, moved), objective=objective_value(scenario, moved)
    )


def _broken_rules(scenario: Scenario, plan: Plan, vehicle_id: str | None = None) -> list[str]:
    return [
        str(v)
        for v in check_plan(scenario, plan)
        if v.rule in "12345678" and vehicle_id in (None, v.subject)
    ]


def _broken(scenario: Scenario, before: Plan, after: Plan, vehicle_id: str) -> list[str]:
    """Broken rules, and for a car staying past the horizon, ending below the plan's energy."""
    broken = _broken_rules(scenario, after)
    vehicle = scenario.vehicle_by_id[vehicle_id]
    if not scenario.departs_in_horizon(vehicle):
        last = scenario.window(vehicle).last
        end, planned = (
            after.vehicles[vehicle_id].soc_kwh[last],
            before.vehicles[vehicle_id].soc_kwh[last],
        )
        assert end is not None and planned is not None
        if end < planned - 1e-6:
            broken.append(f"{vehicle_id} ends the horizon with {end} < {planned} kWh")
    return broken


PLANS = {
    "tiny fleet, milp": (fleet(6, 16, 2, n_sites=2, seed=3, slot_minutes=60), "milp"),
    "depot day, greedy": (fleet(8, 24, 2, n_sites=2, seed=5, slot_minutes=60), "greedy"),
}


@pytest.mark.parametrize("name", PLANS)
def test_shed_and_add_keep_every_rule_and_a_little_more_breaks_one(name: str) -> None:
    doc, strategy = PLANS[name]
    scenario = load_scenario(doc)
    plan = plan_of(scenario, strategy)
    assert plan.is_feasible and not _broken_rules(scenario, plan)
    a = plan_arrays(PlanSnapshot(plan, scenario))
    spare = site_spare_kw(a)
    shed, add = vehicle_shed_kw(a, spare), vehicle_add_kw(a)
    assert shed.any() and add.any()
    for row, vehicle_id in enumerate(a.vehicle_ids):
        spare_row = spare[a.site_of_vehicle[row]]
        for slot in np.flatnonzero(a.usable[row]):
            s, d, x = int(slot), shed[row, slot], add[row, slot]
            moved = _moved(plan, scenario, vehicle_id, s, -d, spare_row)
            assert not _broken(scenario, plan, moved, vehicle_id)
            more = d + 0.05
            if more < a.charge_kw[row, slot]:
                moved = _moved(plan, scenario, vehicle_id, s, -more, spare_row)
                assert _broken(scenario, plan, moved, vehicle_id), (vehicle_id, s, d)
            moved = _moved(plan, scenario, vehicle_id, s, x, spare_row)
            assert not _broken_rules(scenario, moved, vehicle_id)
            more = x + 0.05
            if more < a.charger_kw[row] - a.charge_kw[row, slot]:
                moved = _moved(plan, scenario, vehicle_id, s, more, spare_row)
                assert _broken_rules(scenario, moved, vehicle_id), (vehicle_id, s, x)


# --- over the wire --------------------------------------------------------------------------


def test_get_flexibility_for_a_site_a_region_and_the_fleet(
    stub: pb_grpc.FleetPlannerStub, tokens: Tokens, backend: LocalBackend
) -> None:
    viewer = tokens.metadata(Role.VIEWER)
    site = stub.GetFlexibility(pb.GetFlexibilityRequest(site_id="berlin-depot"), metadata=viewer)
    region = stub.GetFlexibility(pb.GetFlexibilityRequest(region="DE"), metadata=viewer)
    everything = stub.GetFlexibility(pb.GetFlexibilityRequest(), metadata=viewer)
    assert site.plan.revision == 1 and len(site.slots) == 16
    assert list(site.slots) == list(region.slots)  # Berlin is the only DE site
    views = backend.board.views
    assert views is not None
    expected = views.flexibility_series(FLEET)
    assert [s.shed_power_kw for s in everything.slots] == expected.shed_power_kw
    assert [s.add_power_kw for s in everything.slots] == expected.add_power_kw
    assert any(s.shed_power_kw > 0 for s in everything.slots)
    assert everything.slots[0].compute_capacity_shards == 3  # car-d does not consent
    assert sum(s.planned_shards for s in everything.slots) == 4
    for s in everything.slots:
        assert 0 <= s.baseline_import_kw <= s.import_cap_kw
        assert s.baseline_import_kw + s.add_power_kw <= s.import_cap_kw + 1e-9
        assert s.shed_power_kw <= s.baseline_import_kw + 1e-9
    unknown = pb.GetFlexibilityRequest(region="FR")
    error = rpc_error(lambda: stub.GetFlexibility(unknown, metadata=viewer))
    assert error.code() is grpc.StatusCode.NOT_FOUND
