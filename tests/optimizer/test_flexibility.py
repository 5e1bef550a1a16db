"""Shed and add power per car and slot (`optimizer.flexibility` over `plan_arrays`), on real plans.

Deferring a car's shed power out of a slot and charging it back as soon as spare power allows,
or adding its add power and charging that much less later, keeps every rule of the scenario
contract; a little more than either breaks one.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimizer import Plan, Scenario, check_plan, compute_kpis, load_scenario, objective_value
from optimizer import plan_scenario as plan_of
from optimizer.flexibility import site_spare_kw, vehicle_add_kw, vehicle_shed_kw
from optimizer.plan import PlanSnapshot, VehicleSchedule
from optimizer.plan_arrays import FloatArray, plan_arrays
from tests.optimizer.factories import fleet


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
