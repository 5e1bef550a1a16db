"""Flexibility series of a plan's views (`build_views`): tiny scenarios whose answer is obvious,
for a site, a region and the fleet."""

from __future__ import annotations

from typing import Any

import pytest

from idlefleet.queries.views import FLEET, FlexibilitySeries, Scope, build_views
from optimizer import load_scenario
from optimizer import plan_scenario as plan_of
from optimizer.plan import PlanSnapshot
from tests.optimizer.factories import car, tiny, ts

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


def test_each_sites_shortfall_is_what_its_cars_lack_at_departure() -> None:
    # S: the 10 kW charger could add 20 of the 30 kWh owed in 2 h, but the 5 kW grid limit
    # lets it add 10 (required energy is capped by what the charger reaches): 10 kWh short.
    # S2's car is owed nothing.
    second_site = {"id": "S2", "region": "R", "grid_limit_kw": 50.0}
    doc = tiny(
        [100.0] * 2,
        vehicles=[
            one_car(soc_kwh=50.0, target_kwh=80.0, departure=2),
            car("b", site="S2", soc_kwh=20.0, target_kwh=20.0),
        ],
        grid_limit_kw=5.0,
        extra_sites=[second_site],
    )
    scenario = load_scenario(doc)
    plan = plan_of(scenario, "immediate")
    views = build_views(PlanSnapshot(plan, scenario), 1)
    assert views.site_shortfall_kwh == pytest.approx({"S": 10.0, "S2": 0.0})
