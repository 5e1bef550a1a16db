"""The fleet decomposition against the exact MILP on mid-size scenarios (real HiGHS)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date

import pytest

from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.scenarios import generate_scenario
from optimizer import Plan, Scenario, check_plan, load_scenario, plan_scenario
from optimizer.decompose import DecompositionStats as Stats
from optimizer.decompose import plan_decomposed, region_caps, site_groups
from optimizer.plan import SolveStatus
from optimizer.shortfall import least_total_shortfall_kwh
from optimizer.solve import decomposes
from tests.optimizer.factories import car, fleet, tiny


def exact_and_decomposed(scenario: Scenario) -> tuple[Plan, Plan]:
    exact = plan_scenario(scenario, time_limit_s=60)
    assert exact.status is SolveStatus.optimal
    plan = plan_decomposed(scenario, 60, 1e-4, 1e-2)
    assert check_plan(scenario, plan) == []
    return exact, plan


def assert_within_gap(exact: Plan, plan: Plan) -> None:
    """The decomposition's bound is valid and its objective within its own gap of the
    optimum (the exact solve stops at 1e-4 relative or 1e-2 absolute)."""
    assert exact.objective is not None and plan.objective is not None
    assert plan.best_bound is not None and plan.gap_frac is not None
    slack = max(1e-4 * abs(exact.objective), 1e-2)
    assert plan.best_bound <= exact.objective + 1e-6
    assert plan.objective >= exact.objective - slack
    assert plan.objective - exact.objective <= plan.gap_frac * abs(plan.objective) + 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_depot_days_with_site_and_region_caps(seed: int) -> None:
    scenario = load_scenario(fleet(40, 96, 6, n_sites=3, seed=seed))
    assert scenario.region_caps()  # sites 0 and 2 share a region cap: solved as one group
    exact, plan = exact_and_decomposed(scenario)
    assert_within_gap(exact, plan)


def test_a_generated_day_from_real_data() -> None:
    sites = demo_sites(2, 50, "GB")
    scenario = generate_scenario(50, sites, 80, date(2020, 6, 12), seed=4)
    exact, plan = exact_and_decomposed(scenario)
    assert_within_gap(exact, plan)
    assert plan.gap_frac is not None and plan.gap_frac < 0.01


def test_region_caps_group_their_sites() -> None:
    scenario = load_scenario(fleet(12, 96, 2, n_sites=4, seed=3))
    groups = site_groups(len(scenario.sites), region_caps(scenario))
    assert sorted(sorted(g.tolist()) for g in groups) == [[0, 2], [1], [3]]


def test_a_decomposed_fleet_behind_a_tight_connection_leaves_the_least_shortfall() -> None:
    sites = demo_sites(3, 240, "FR")
    generated = generate_scenario(240, sites, 20, date(2020, 6, 20), seed=2)
    tight = replace(
        generated,
        sites=tuple(replace(s, grid_limit_kw=s.grid_limit_kw / 40) for s in generated.sites),
    )
    assert decomposes(tight)
    least = least_total_shortfall_kwh(tight)
    assert least > 1.0
    plan = plan_scenario(tight, time_limit_s=60, mip_gap_frac=0.01)
    assert plan.shortfall_kwh == pytest.approx(least, rel=1e-6, abs=1e-4)
    assert check_plan(tight, plan) == []


def test_plan_scenario_decomposes_large_fleets_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sites = demo_sites(3, 240, "FR")
    scenario = generate_scenario(240, sites, 40, date(2020, 6, 20), seed=2)
    assert decomposes(scenario)
    with caplog.at_level(logging.INFO, logger="optimizer.decompose"):
        plan = plan_scenario(scenario, time_limit_s=60, mip_gap_frac=0.005)
    stats = [r.stats for r in caplog.records if isinstance(getattr(r, "stats", None), Stats)]
    assert len(stats) == 1 and stats[0].groups == 3 and stats[0].rounds >= 1
    assert plan.strategy == "milp" and plan.is_feasible
    assert plan.gap_frac is not None and plan.gap_frac <= 0.005
    assert plan.status is SolveStatus.optimal


def test_replicas_stay_on_distinct_vehicles() -> None:
    cars = [car(f"c{k}", soc_kwh=40.0) for k in range(3)]
    job = {"id": "j", "shards": 2, "replicas": 3, "value_per_shard": 1.0}
    scenario = load_scenario(tiny([100] * 4, vehicles=cars, jobs=[job]))
    exact, plan = exact_and_decomposed(scenario)
    assert_within_gap(exact, plan)
    per_vehicle = {a.vehicle: 0 for a in plan.assignments}
    for a in plan.assignments:
        per_vehicle[a.vehicle] += a.shards
    assert plan.jobs["j"].executions == 6 and max(per_vehicle.values()) <= 2


def test_no_work_and_nothing_to_charge() -> None:
    late = car("late", arrival=5, departure=9)  # arrives after the horizon
    scenario = load_scenario(tiny([100] * 3, vehicles=[late, car("full", soc_kwh=50.0)]))
    plan = plan_decomposed(scenario, 30, 1e-4, 1e-2)
    assert plan.status is SolveStatus.optimal and plan.objective == pytest.approx(0.0)
    assert check_plan(scenario, plan) == []


def test_the_first_round_completes_whatever_the_time_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scenario = load_scenario(fleet(10, 24, 2, n_sites=2, seed=1))
    with caplog.at_level(logging.INFO, logger="optimizer.decompose"):
        plan = plan_decomposed(scenario, 0.0, 1e-9, 0.0)
    assert plan.is_feasible and check_plan(scenario, plan) == []
    assert [r.stats.rounds for r in caplog.records if hasattr(r, "stats")] == [1]
