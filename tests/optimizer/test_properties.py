"""Hypothesis properties on small random scenarios (real HiGHS solves): every plan obeys
the contract or is typed infeasible; metamorphic relations of the optimum (price scaling,
more PV, looser limits); the decomposition's bound is valid."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from optimizer import (
    Plan,
    Scenario,
    check_plan,
    compute_kpis,
    load_scenario,
    objective_value,
    plan_from_dict,
    plan_scenario,
    scenario_to_dict,
)
from optimizer.decompose import plan_decomposed
from optimizer.energy import pv_used_kw
from optimizer.plan import SolveStatus, validate_plan_dict
from tests.optimizer.factories import ts

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
halves = st.integers(min_value=-2, max_value=14).map(lambda k: k / 2)


@st.composite
def scenarios(draw: st.DrawFn, loose: bool = False) -> dict[str, Any]:
    n = draw(st.integers(3, 6))
    n_regions = draw(st.integers(1, 2))
    regions = []
    for r in range(n_regions):
        region: dict[str, Any] = {
            "id": f"R{r}",
            "intensity_g_per_kwh": draw(st.lists(st.integers(0, 600), min_size=n, max_size=n)),
        }
        if draw(st.booleans()):
            region["price_per_kwh"] = draw(
                st.lists(st.sampled_from([-0.05, 0.0, 0.1, 0.3]), min_size=n, max_size=n)
            )
        regions.append(region)
    sites = []
    for i in range(draw(st.integers(1, 2))):
        site: dict[str, Any] = {
            "id": f"S{i}",
            "region": f"R{draw(st.integers(0, n_regions - 1))}",
            "grid_limit_kw": 1000.0 if loose else draw(st.sampled_from([5.0, 20.0, 1000.0])),
        }
        if draw(st.booleans()):
            site["pv_kw"] = draw(st.lists(st.sampled_from([0.0, 2.0, 6.0]), min_size=n, max_size=n))
        sites.append(site)
    vehicles = []
    for v in range(draw(st.integers(1, 4))):
        arrival = draw(halves)
        battery = float(draw(st.sampled_from([20, 40, 60])))
        soc = draw(st.floats(0, battery, allow_nan=False))
        vehicle: dict[str, Any] = {
            "id": f"v{v}",
            "site": f"S{draw(st.integers(0, len(sites) - 1))}",
            "arrival": ts(arrival),
            "departure": ts(arrival + draw(st.integers(1, n + 2)) / 2 * 2),
            "battery_kwh": battery,
            "soc_kwh": soc,
            "reserve_kwh": draw(st.floats(0, battery, allow_nan=False)),
            "charger_kw": draw(st.sampled_from([0.0, 3.7, 7.0, 11.0])),
            "charge_efficiency_frac": draw(st.sampled_from([0.8, 0.92, 1.0])),
            "compute_kw": draw(st.sampled_from([0.0, 0.5, 2.0, 5.0])),
            "shards_per_slot": draw(st.integers(0, 2)),
            "wear_cost_per_kwh": draw(st.sampled_from([0.0, 0.05])),
            "participating": draw(st.booleans()),
        }
        if draw(st.booleans()):
            vehicle["target_kwh"] = draw(st.floats(0, battery * 1.2, allow_nan=False))
        vehicles.append(vehicle)
    jobs = []
    for j in range(draw(st.integers(0, 2))):
        job: dict[str, Any] = {
            "id": f"j{j}",
            "shards": draw(st.integers(1, 6)),
            "replicas": draw(st.integers(1, 2)),
            "value_per_shard": draw(st.sampled_from([0.0, 0.01, 0.2, 2.0])),
        }
        if draw(st.booleans()):
            release = draw(st.integers(0, n - 1))
            job["release"] = ts(release)
            job["deadline"] = ts(release + draw(st.integers(1, n)))
        if draw(st.booleans()):
            job["sites"] = [draw(st.sampled_from([s["id"] for s in sites]))]
        jobs.append(job)
    events = []
    for e in range(0 if loose else draw(st.integers(0, 2))):
        start = draw(halves)
        event: dict[str, Any] = {
            "id": f"e{e}",
            "start": ts(start),
            "end": ts(start + draw(st.integers(1, 4)) / 2),
            "max_import_kw": draw(st.sampled_from([0.0, 4.0, 10.0])),
        }
        if draw(st.booleans()):
            event["site"] = draw(st.sampled_from([s["id"] for s in sites]))
        else:
            event["region"] = draw(st.sampled_from([r["id"] for r in regions]))
        events.append(event)
    return {
        "scenario_version": 1,
        "horizon": {"start": ts(0), "slot_minutes": 60, "slots": n},
        "objective": {"carbon_price_per_tonne": draw(st.sampled_from([0.0, 100.0, 500.0]))},
        "regions": regions,
        "sites": sites,
        "vehicles": vehicles,
        "jobs": jobs,
        "dr_events": events,
    }


def assert_sound(scenario: Scenario, plan: Plan) -> None:
    """check_plan is clean, KPIs and objective recompute, energy balances, JSON round-trips."""
    assert check_plan(scenario, plan) == []
    assert plan.kpis == compute_kpis(scenario, plan)
    assert plan.objective == pytest.approx(objective_value(scenario, plan), rel=1e-9, abs=1e-9)
    dt_h = scenario.horizon.dt_h
    charged_kwh = sum(sum(vs.charge_kw) for vs in plan.vehicles.values()) * dt_h
    pv_kwh = (
        sum(
            sum(x)
            for x in pv_used_kw(
                scenario, {k: v.charge_kw for k, v in plan.vehicles.items()}
            ).values()
        )
        * dt_h
    )
    grid_kwh = sum(sum(x) for x in plan.grid_import_kw.values()) * dt_h
    assert grid_kwh + pv_kwh == pytest.approx(charged_kwh, abs=1e-6)
    for v in scenario.vehicles:
        vs = plan.vehicles[v.id]
        levels = [x for x in vs.soc_kwh if x is not None]
        if levels:
            moved = sum(
                v.charge_efficiency_frac * c * dt_h - v.compute_kw * r * dt_h
                for c, r in zip(vs.charge_kw, vs.running, strict=True)
            )
            assert levels[-1] - levels[0] == pytest.approx(moved, abs=1e-6)
    doc = plan.to_dict()
    validate_plan_dict(doc)
    assert plan_from_dict(doc) == plan


@PROPERTY_SETTINGS
@given(doc=scenarios())
def test_every_strategy_obeys_the_rules_and_milp_is_best(doc: dict[str, Any]) -> None:
    scenario = load_scenario(doc)
    milp = plan_scenario(scenario)
    event(f"milp {milp.status.value}")
    if milp.status is SolveStatus.infeasible:
        assert milp.reason and milp.offending_ids
        validate_plan_dict(milp.to_dict())
    else:
        assert milp.status is SolveStatus.optimal
        assert_sound(scenario, milp)
    for strategy in ("immediate", "greedy"):
        plan = plan_scenario(scenario, strategy)
        event(f"{strategy} {plan.status.value}")
        if plan.status is SolveStatus.infeasible:
            assert plan.reason
            continue
        assert plan.status is SolveStatus.feasible
        assert_sound(scenario, plan)
        # a baseline that honours every rule proves the scenario feasible
        assert milp.objective is not None, milp.reason
        assert plan.objective is not None
        # within the solver's stopping gap (relative 1e-4, absolute 1e-2)
        assert milp.objective <= plan.objective + max(1e-4 * abs(plan.objective), 1e-2)


@PROPERTY_SETTINGS
@given(doc=scenarios(loose=True))
def test_baselines_are_feasible_without_caps(doc: dict[str, Any]) -> None:
    scenario = load_scenario(doc)
    for strategy in ("immediate", "greedy"):
        plan = plan_scenario(scenario, strategy)
        assert plan.status is SolveStatus.feasible, plan.reason
        assert_sound(scenario, plan)


@settings(max_examples=30, deadline=None)
@given(doc=scenarios())
def test_scenario_round_trip(doc: dict[str, Any]) -> None:
    scenario = load_scenario(doc)
    assert load_scenario(scenario_to_dict(scenario)) == scenario


def solver_slack(objective: float) -> float:
    """How far a solve may stop from the optimum: 1e-4 relative or 1e-2 absolute."""
    return max(1e-4 * abs(objective), 1e-2)


def scaled_prices(doc: dict[str, Any], k: float) -> dict[str, Any]:
    """``doc`` with the carbon price, energy prices, wear costs and shard values times ``k``."""
    out = copy.deepcopy(doc)
    out["objective"]["carbon_price_per_tonne"] *= k
    for region in out["regions"]:
        if "price_per_kwh" in region:
            region["price_per_kwh"] = [k * p for p in region["price_per_kwh"]]
    for vehicle in out["vehicles"]:
        vehicle["wear_cost_per_kwh"] *= k
    for job in out["jobs"]:
        job["value_per_shard"] *= k
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=scenarios(), k=st.sampled_from([0.5, 2.0, 10.0]))
def test_scaling_every_price_scales_the_objective(doc: dict[str, Any], k: float) -> None:
    base = plan_scenario(load_scenario(doc))
    scaled = plan_scenario(load_scenario(scaled_prices(doc, k)))
    assert scaled.status is base.status
    if base.objective is None or scaled.objective is None:
        return
    tolerance = solver_slack(scaled.objective) + k * solver_slack(base.objective)
    assert scaled.objective == pytest.approx(k * base.objective, abs=tolerance)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=scenarios(), extra=st.lists(st.sampled_from([0.0, 1.0, 5.0]), min_size=6, max_size=6))
def test_adding_pv_never_raises_the_optimal_objective(
    doc: dict[str, Any], extra: list[float]
) -> None:
    for region in doc["regions"]:  # importing less can only save when energy never pays
        region.pop("price_per_kwh", None)
    base = plan_scenario(load_scenario(doc))
    sunnier = copy.deepcopy(doc)
    n = doc["horizon"]["slots"]
    for site in sunnier["sites"]:
        site["pv_kw"] = [p + e for p, e in zip(site.get("pv_kw", [0.0] * n), extra, strict=False)]
    more = plan_scenario(load_scenario(sunnier))
    if base.objective is None:
        return
    assert more.objective is not None, more.reason
    assert more.objective <= base.objective + solver_slack(base.objective)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=scenarios(), more_kw=st.sampled_from([1.0, 5.0, 100.0]), which=st.integers(0, 3))
def test_relaxing_a_grid_limit_or_dr_cap_never_worsens_the_objective(
    doc: dict[str, Any], more_kw: float, which: int
) -> None:
    base = plan_scenario(load_scenario(doc))
    looser = copy.deepcopy(doc)
    limits = [*looser["sites"], *looser["dr_events"]]
    target = limits[which % len(limits)]
    key = "grid_limit_kw" if "grid_limit_kw" in target else "max_import_kw"
    target[key] += more_kw
    relaxed = plan_scenario(load_scenario(looser))
    if base.objective is None:
        return
    assert relaxed.objective is not None, relaxed.reason
    assert relaxed.objective <= base.objective + solver_slack(base.objective)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=scenarios())
def test_the_decomposition_is_feasible_or_typed_infeasible_with_a_valid_bound(
    doc: dict[str, Any],
) -> None:
    scenario = load_scenario(doc)
    exact = plan_scenario(scenario)
    plan = plan_decomposed(scenario, 30, 1e-4, 1e-2)
    event(f"decomposition {plan.status.value}")
    assert check_plan(scenario, plan) == []
    if exact.status is SolveStatus.infeasible:
        assert plan.status is SolveStatus.infeasible and plan.reason and plan.offending_ids
        return
    assert plan.is_feasible, plan.reason
    assert exact.objective is not None and plan.objective is not None
    assert plan.best_bound is not None
    assert plan.best_bound <= exact.objective + 1e-6
    assert plan.objective >= exact.objective - solver_slack(exact.objective)
    assert_sound(scenario, plan)
