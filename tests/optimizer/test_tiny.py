"""Tiny scenarios whose optimum is obvious, one per constraint family (real HiGHS)."""

from __future__ import annotations

from typing import Any

import pytest

from optimizer import Plan, Scenario, check_plan, load_scenario, plan_scenario
from optimizer.plan import SolveStatus
from tests.optimizer.factories import car, tiny, ts

TOL = 1e-5


def solve(doc: dict[str, Any], strategy: str = "milp") -> tuple[Scenario, Plan]:
    scenario = load_scenario(doc)
    plan = plan_scenario(scenario, strategy)
    assert plan.status in (SolveStatus.optimal, SolveStatus.feasible), plan.reason
    assert check_plan(scenario, plan) == []
    return scenario, plan


def shards_of(plan: Plan, vehicle: str) -> int:
    return sum(a.shards for a in plan.assignments if a.vehicle == vehicle)


def test_charges_in_the_cleanest_slot() -> None:
    doc = tiny([300, 100, 200, 400], vehicles=[car(departure=4, soc_kwh=20, target_kwh=30)])
    _, plan = solve(doc)
    assert plan.status is SolveStatus.optimal
    assert plan.vehicles["car"].charge_kw == pytest.approx((0, 10, 0, 0), abs=TOL)
    assert plan.vehicles["car"].soc_kwh == pytest.approx((20, 20, 30, 30, 30), abs=TOL)
    # 10 kWh at 100 g/kWh and 100 per tonne
    assert plan.objective == pytest.approx(10 * 100 * 100 / 1e6)
    assert plan.kpis is not None and plan.kpis.emissions_kg == pytest.approx(1.0)
    assert plan.gap_frac == pytest.approx(0.0, abs=1e-4)


def test_charger_limit_spreads_over_the_next_cleanest_slot() -> None:
    doc = tiny([300, 100, 200, 400], vehicles=[car(departure=4, soc_kwh=20, target_kwh=35)])
    _, plan = solve(doc)
    assert plan.vehicles["car"].charge_kw == pytest.approx((0, 10, 5, 0), abs=TOL)


def test_departure_target_capped_by_what_full_power_reaches() -> None:
    # target 50 is out of reach: 10 + 2 slots * 10 kW * 0.5 = 20 is owed (rule 5)
    vehicle = car(departure=2, soc_kwh=10, target_kwh=50, charge_efficiency_frac=0.5)
    scenario, plan = solve(tiny([100, 100, 100], vehicles=[vehicle]))
    assert scenario.required_departure_kwh(scenario.vehicles[0]) == pytest.approx(20)
    assert plan.vehicles["car"].charge_kw == pytest.approx((10, 10, 0), abs=TOL)
    assert plan.vehicles["car"].soc_kwh == (10.0, pytest.approx(15), pytest.approx(20), None)


def test_target_capped_by_battery() -> None:
    vehicle = car(departure=3, soc_kwh=45, target_kwh=80, battery_kwh=50)
    _, plan = solve(tiny([100, 100, 100], vehicles=[vehicle]))
    assert plan.vehicles["car"].soc_kwh[3] == pytest.approx(50)


def test_vehicle_parked_past_the_horizon_owes_no_target() -> None:
    vehicle = car(departure=10, soc_kwh=10, target_kwh=50)
    _, plan = solve(tiny([100, 100, 100], vehicles=[vehicle]))
    assert sum(plan.vehicles["car"].charge_kw) == pytest.approx(0, abs=TOL)


def test_partial_slots_are_not_usable() -> None:
    vehicle = car(arrival=0.5, departure=2.5, soc_kwh=10, target_kwh=20)
    _, plan = solve(tiny([100, 500, 100, 50], vehicles=[vehicle]))
    vs = plan.vehicles["car"]
    assert vs.charge_kw == pytest.approx((0, 10, 0, 0), abs=TOL)
    assert vs.soc_kwh == (None, 10.0, pytest.approx(20), None, None)


def test_reserve_floor_binds() -> None:
    vehicle = car(soc_kwh=20, reserve_kwh=15, charger_kw=0, compute_kw=2.5)
    job = {"id": "j", "shards": 10, "value_per_shard": 100.0}
    _, plan = solve(tiny([100] * 4, vehicles=[vehicle], jobs=[job]))
    assert shards_of(plan, "car") == 2  # (20 - 15) / 2.5 slots
    assert min(x for x in plan.vehicles["car"].soc_kwh if x is not None) == pytest.approx(15)
    assert plan.jobs["j"].unmet == 8


def test_site_grid_limit_with_pv() -> None:
    cars = [
        car("a", departure=2, soc_kwh=0, target_kwh=10),
        car("b", departure=2, soc_kwh=0, target_kwh=10),
    ]
    doc = tiny([100, 500], vehicles=cars, grid_limit_kw=5.0, pv_kw=[15.0, 0.0])
    _, plan = solve(doc)
    assert plan.grid_import_kw["S"] == pytest.approx((5, 0), abs=TOL)
    assert plan.kpis is not None and plan.kpis.pv_energy_kwh == pytest.approx(15)
    doc = tiny([100, 500], vehicles=cars, grid_limit_kw=3.0, pv_kw=[15.0, 0.0])
    _, plan = solve(doc)
    assert plan.grid_import_kw["S"] == pytest.approx((3, 2), abs=TOL)


def test_site_dr_cap() -> None:
    event = {"id": "evt", "site": "S", "start": ts(0), "end": ts(1), "max_import_kw": 4.0}
    vehicle = car(departure=3, soc_kwh=0, target_kwh=10)
    _, plan = solve(tiny([100, 300, 200], vehicles=[vehicle], dr_events=[event]))
    assert plan.vehicles["car"].charge_kw == pytest.approx((4, 0, 6), abs=TOL)


def test_region_dr_cap_bounds_the_sum_over_sites() -> None:
    event = {"id": "evt", "region": "R", "start": ts(0), "end": ts(1), "max_import_kw": 6.0}
    cars = [
        car("a", departure=2, soc_kwh=0, target_kwh=5),
        car("b", departure=2, soc_kwh=0, target_kwh=5, site="S2"),
    ]
    s2 = {"id": "S2", "region": "R", "grid_limit_kw": 100.0}
    doc = tiny([100, 300], vehicles=cars, dr_events=[event], extra_sites=[s2])
    _, plan = solve(doc)
    first = plan.grid_import_kw["S"][0] + plan.grid_import_kw["S2"][0]
    assert first == pytest.approx(6, abs=TOL)
    assert plan.grid_import_kw["S"][1] + plan.grid_import_kw["S2"][1] == pytest.approx(4, abs=TOL)


def test_dr_event_partly_covering_a_slot_binds_the_whole_slot() -> None:
    event = {"id": "evt", "site": "S", "start": ts(0.5), "end": ts(0.75), "max_import_kw": 0.0}
    vehicle = car(departure=2, soc_kwh=0, target_kwh=10)
    _, plan = solve(tiny([100, 300], vehicles=[vehicle], dr_events=[event]))
    assert plan.vehicles["car"].charge_kw == pytest.approx((0, 10), abs=TOL)


def test_job_window() -> None:
    job = {"id": "j", "shards": 1, "value_per_shard": 10.0, "release": ts(2), "deadline": ts(3)}
    _, plan = solve(tiny([100] * 4, vehicles=[car()], jobs=[job]))
    assert [(a.slot, a.shards) for a in plan.assignments] == [(2, 1)]


def test_residency_keeps_work_at_allowed_sites() -> None:
    s2 = {"id": "S2", "region": "R", "grid_limit_kw": 100.0}
    job = {"id": "j", "shards": 3, "value_per_shard": 10.0, "sites": ["S2"]}
    cars = [car("a", soc_kwh=40), car("b", site="S2")]
    _, plan = solve(tiny([100] * 4, vehicles=cars, jobs=[job], extra_sites=[s2]))
    assert {a.vehicle for a in plan.assignments} == {"b"}
    assert plan.jobs["j"].executions == 3


def test_replicas_run_on_distinct_vehicles() -> None:
    job = {"id": "j", "shards": 2, "replicas": 2, "value_per_shard": 10.0}
    _, plan = solve(tiny([100] * 4, vehicles=[car("a"), car("b")], jobs=[job]))
    assert shards_of(plan, "a") == 2 and shards_of(plan, "b") == 2
    _, plan = solve(tiny([100] * 4, vehicles=[car("a", shards_per_slot=3)], jobs=[job]))
    assert plan.jobs["j"].executions == 2 and plan.jobs["j"].unmet == 2


def test_non_participating_vehicle_never_runs() -> None:
    cars = [car("idle", soc_kwh=50, participating=False), car("busy", soc_kwh=5)]
    job = {"id": "j", "shards": 10, "value_per_shard": 10.0}
    _, plan = solve(tiny([100] * 4, vehicles=cars, jobs=[job]))
    assert shards_of(plan, "idle") == 0 and not any(plan.vehicles["idle"].running)
    assert shards_of(plan, "busy") == 4


def test_unmet_when_value_is_below_cost() -> None:
    job = {"id": "j", "shards": 4, "value_per_shard": 0.001}
    vehicle = car(wear_cost_per_kwh=0.1)
    _, plan = solve(tiny([100] * 4, vehicles=[vehicle], jobs=[job]))
    assert plan.jobs["j"].unmet == 4 and plan.assignments == ()


@pytest.mark.parametrize(("value", "runs"), [(0.04, 0), (0.06, 4)])
def test_deficit_valuation_stops_draining_for_cheap_compute(value: float, runs: int) -> None:
    # 1 kWh drawn per shard, bought back at 500 g/kWh * 100 / t = 0.05 per kWh
    vehicle = car(charger_kw=0, soc_kwh=40, compute_kw=1.0)
    job = {"id": "j", "shards": 4, "value_per_shard": value}
    _, plan = solve(tiny([500] * 4, vehicles=[vehicle], jobs=[job]))
    assert shards_of(plan, "car") == runs
    assert plan.kpis is not None
    assert plan.kpis.deferred_emissions_kg == pytest.approx(runs * 0.5)


def test_compute_is_recharged_in_clean_slots() -> None:
    # running draws from the battery; the owner's level is restored at the cleanest slot
    vehicle = car(departure=4, soc_kwh=20, reserve_kwh=20, compute_kw=2.0)
    job = {"id": "j", "shards": 1, "value_per_shard": 10.0, "release": ts(2), "deadline": ts(3)}
    _, plan = solve(tiny([500, 50, 500, 500], vehicles=[vehicle], jobs=[job]))
    assert plan.vehicles["car"].charge_kw == pytest.approx((0, 2, 0, 0), abs=TOL)


def test_negative_price_import_stays_exact() -> None:
    vehicle = car(departure=2, soc_kwh=0, target_kwh=10)
    doc = tiny([100, 100], vehicles=[vehicle], price=[-1.0, 0.5], pv_kw=[4.0, 0.0])
    _, plan = solve(doc)
    assert plan.grid_import_kw["S"] == pytest.approx((6, 0), abs=TOL)
    assert plan.best_bound is not None and plan.objective is not None
    assert plan.objective == pytest.approx(plan.best_bound, abs=1e-6)


def test_a_dr_cap_of_zero_leaves_the_car_short_and_names_it_and_the_event() -> None:
    event = {"id": "blackout", "site": "S", "start": ts(0), "end": ts(3), "max_import_kw": 0.0}
    cars = [car("needy", departure=3, soc_kwh=0, target_kwh=10), car("fine", departure=3)]
    plan = plan_scenario(load_scenario(tiny([100] * 3, vehicles=cars, dr_events=[event])))
    assert plan.status is SolveStatus.optimal
    assert plan.grid_import_kw["S"] == pytest.approx((0, 0, 0), abs=TOL)
    assert plan.vehicles["needy"].shortfall_kwh == pytest.approx(10.0, abs=TOL)
    assert plan.vehicles["fine"].shortfall_kwh == 0.0
    assert plan.kpis is not None and plan.kpis.shortfall_kwh == pytest.approx(10.0, abs=TOL)
    assert plan.vehicles["needy"].limited_by == ("DR cap blackout",)
    assert plan.reason and "needy" in plan.reason
    assert set(plan.offending_ids) == {"needy", "blackout"}
    doc = plan.to_dict()
    assert doc["status"] == "optimal" and doc["offending_ids"] == list(plan.offending_ids)
    assert doc["vehicles"]["needy"]["shortfall_kwh"] == pytest.approx(10.0, abs=TOL)


def test_a_connection_too_small_for_two_cars_shares_the_shortfall_fairly() -> None:
    # each car alone fits under the 10 kW limit, the two together do not: 20 kWh for 30 owed
    cars = [car(c, departure=2, soc_kwh=0, target_kwh=15) for c in ("a", "b")]
    plan = plan_scenario(load_scenario(tiny([100] * 2, vehicles=cars, grid_limit_kw=10.0)))
    assert plan.is_feasible and plan.shortfall_kwh == pytest.approx(10.0, abs=TOL)
    assert plan.vehicles["a"].shortfall_kwh == pytest.approx(5.0, abs=TOL)
    assert plan.vehicles["b"].shortfall_kwh == pytest.approx(5.0, abs=TOL)
    assert "S" in plan.offending_ids and {"a", "b"} <= set(plan.offending_ids)
    assert plan.vehicles["a"].limited_by == ("grid limit of S (10 kW)",)


def test_no_job_value_buys_an_owners_energy() -> None:
    # a 5 kW connection gives 5 of the 10 kWh the charger could; running a precious shard
    # would cost the owner another 5 kWh, so the shard stays unmet
    cars = [car("a", departure=1, soc_kwh=0, target_kwh=20, compute_kw=5.0)]
    job = {"id": "precious", "shards": 1, "value_per_shard": 1e6}
    plan = plan_scenario(load_scenario(tiny([100], vehicles=cars, jobs=[job], grid_limit_kw=5.0)))
    assert plan.shortfall_kwh == pytest.approx(5.0, abs=TOL)
    assert plan.jobs["precious"].unmet == 1


@pytest.mark.parametrize("strategy", ["immediate", "greedy"])
def test_baselines_honour_the_rules(strategy: str) -> None:
    event = {"id": "evt", "site": "S", "start": ts(1), "end": ts(2), "max_import_kw": 3.0}
    cars = [
        car("a", departure=4, soc_kwh=10, target_kwh=30, reserve_kwh=10),
        car("b", departure=6, soc_kwh=30, reserve_kwh=5),
        car("c", participating=False),
    ]
    job = {"id": "j", "shards": 4, "replicas": 2, "value_per_shard": 1.0}
    doc = tiny(
        [300, 100, 200, 400, 50, 50],
        vehicles=cars,
        jobs=[job],
        dr_events=[event],
        grid_limit_kw=15.0,
        pv_kw=[0, 0, 5, 5, 0, 0],
    )
    _, plan = solve(doc, strategy)
    assert plan.strategy == strategy
    _, best = solve(doc)
    assert best.objective is not None and plan.objective is not None
    assert best.objective <= plan.objective + 1e-6


def test_immediate_charges_on_arrival() -> None:
    vehicle = car(departure=4, soc_kwh=20, target_kwh=35)
    _, plan = solve(tiny([300, 100, 200, 50], vehicles=[vehicle]), "immediate")
    assert plan.vehicles["car"].charge_kw == pytest.approx((10, 5, 0, 0), abs=TOL)


def test_greedy_charges_in_the_cleanest_slots() -> None:
    vehicle = car(departure=4, soc_kwh=20, target_kwh=35)
    _, plan = solve(tiny([300, 100, 200, 50], vehicles=[vehicle]), "greedy")
    assert plan.vehicles["car"].charge_kw == pytest.approx((0, 5, 0, 10), abs=TOL)


def test_solves_from_several_threads_at_once_all_succeed() -> None:
    """A service's tick and its health probe solve in one process at the same time."""
    from concurrent.futures import ThreadPoolExecutor, wait

    scenario = load_scenario(
        tiny([300, 100, 200, 400], vehicles=[car(departure=4, soc_kwh=20, target_kwh=30)])
    )
    pool = ThreadPoolExecutor(4)
    futures = [pool.submit(plan_scenario, scenario, "milp") for _ in range(16)]
    _, stuck = wait(futures, timeout=60)
    pool.shutdown(wait=not stuck, cancel_futures=True)
    assert not stuck, "concurrent solves deadlocked"
    plans = [future.result() for future in futures]
    assert all(plan.status is SolveStatus.optimal for plan in plans)
    assert {plan.objective for plan in plans} == {plans[0].objective}
