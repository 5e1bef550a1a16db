"""The checker catches each broken rule; the formulation is sparse; plans round-trip."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from optimizer import (
    Plan,
    PlanViolationError,
    Scenario,
    check_plan,
    load_scenario,
    plan_from_dict,
    plan_scenario,
)
from optimizer import solve as solve_module
from optimizer.formulation import build_index, build_model
from optimizer.plan import Assignment, JobOutcome, SolveStatus, VehicleSchedule
from optimizer.problem import Horizon
from tests.optimizer.factories import car, tiny, ts


@pytest.fixture(scope="module")
def solved() -> tuple[Scenario, Plan]:
    event = {"id": "evt", "site": "S", "start": ts(0), "end": ts(1), "max_import_kw": 2.0}
    job = {"id": "j", "shards": 2, "value_per_shard": 5.0, "release": ts(1), "deadline": ts(4)}
    cars = [
        car("a", departure=4, soc_kwh=10, target_kwh=30, reserve_kwh=10),
        car("b", soc_kwh=30, participating=False),
    ]
    doc = tiny([300, 100, 200, 50], vehicles=cars, jobs=[job], dr_events=[event])
    scenario = load_scenario(doc)
    plan = plan_scenario(scenario)
    assert plan.status is SolveStatus.optimal
    assert check_plan(scenario, plan) == []
    return scenario, plan


def with_vehicle(plan: Plan, vid: str, **changes: object) -> Plan:
    vehicles = dict(plan.vehicles)
    vehicles[vid] = replace(vehicles[vid], **changes)  # type: ignore[arg-type]
    return replace(plan, vehicles=vehicles)


def rules(scenario: Scenario, plan: Plan) -> set[str]:
    return {v.rule for v in check_plan(scenario, plan)}


def test_rule_1_and_2_charge_outside_window_and_above_charger(
    solved: tuple[Scenario, Plan],
) -> None:
    scenario, plan = solved
    vs = plan.vehicles["a"]
    bad = with_vehicle(plan, "a", charge_kw=(*vs.charge_kw[:3], 99.0))
    assert {"2", "3"} <= rules(scenario, bad)
    late = car("late", arrival=2, departure=4)
    scenario2 = load_scenario(tiny([100] * 4, vehicles=[late]))
    plan2 = plan_scenario(scenario2)
    bad2 = with_vehicle(plan2, "late", charge_kw=(1.0, 0.0, 0.0, 0.0))
    assert "1" in rules(scenario2, bad2)


def test_rule_1_non_participating_runs(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    running = (1, 0, 0, 0)
    bad = with_vehicle(plan, "b", running=running)
    assert "1" in rules(scenario, bad)


def test_rule_3_soc_not_following_the_balance(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    soc = list(plan.vehicles["a"].soc_kwh)
    soc[2] = (soc[2] or 0.0) + 1.0
    assert "3" in rules(scenario, with_vehicle(plan, "a", soc_kwh=tuple(soc)))


def test_rule_4_and_5_drained_vehicle(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    n = scenario.horizon.slots
    assignments = tuple(a for a in plan.assignments if a.vehicle != "a")
    bad = replace(
        with_vehicle(
            plan,
            "a",
            charge_kw=(0.0,) * n,
            running=(1, 1, 1, 1),
            soc_kwh=(10.0, 9.0, 8.0, 7.0, 6.0),
        ),
        assignments=assignments,
    )
    assert {"4", "5"} <= rules(scenario, bad)


def test_rule_6_and_7_assignments(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    extra = Assignment(job="j", vehicle="a", slot=0, shards=1)  # before release, not running
    bad = replace(plan, assignments=(*plan.assignments, extra))
    assert {"6", "7"} <= rules(scenario, bad)
    wrong_count = replace(plan, jobs={"j": JobOutcome(executions=0, unmet=2)})
    assert "7" in rules(scenario, wrong_count)


def test_rule_8_caps_and_reported_import(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    n = scenario.horizon.slots
    imports = dict(plan.grid_import_kw)
    imports["S"] = (0.0,) * n
    assert "8" in rules(scenario, replace(plan, grid_import_kw=imports))
    vs = plan.vehicles["a"]
    over = with_vehicle(plan, "a", charge_kw=(5.0, *vs.charge_kw[1:]))
    assert "8" in rules(scenario, over)  # DR cap of 2 kW in slot 0


def test_kpis_and_objective_must_match(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    assert plan.kpis is not None and plan.objective is not None
    assert "kpis" in rules(scenario, replace(plan, objective=plan.objective + 1))
    kpis = replace(plan.kpis, emissions_kg=plan.kpis.emissions_kg + 1)
    assert "kpis" in rules(scenario, replace(plan, kpis=kpis))


def test_structure(solved: tuple[Scenario, Plan]) -> None:
    scenario, plan = solved
    vehicles = dict(plan.vehicles)
    vehicles["a"] = VehicleSchedule(charge_kw=(0.0,), running=(0,), soc_kwh=(None,))
    assert "structure" in rules(scenario, replace(plan, vehicles=vehicles))
    infeasible = Plan(strategy="milp", status=SolveStatus.infeasible, objective=None)
    assert "structure" in rules(scenario, infeasible)


def test_plan_document_round_trip(solved: tuple[Scenario, Plan]) -> None:
    _, plan = solved
    doc = plan.to_dict()
    assert doc["plan_version"] == 2 and doc["strategy"] == "milp"
    assert len(doc["vehicles"]["a"]["soc_kwh"]) == 5
    assert doc["vehicles"]["a"]["soc_kwh"][4] is not None
    assert set(doc["kpis"]) == {
        "emissions_kg",
        "deferred_emissions_kg",
        "grid_energy_kwh",
        "pv_energy_kwh",
        "energy_cost",
        "wear_cost",
        "battery_throughput_kwh",
        "unmet_shards",
        "shortfall_kwh",
    }
    assert plan_from_dict(doc) == plan


def test_formulation_is_sparse() -> None:
    cars = [
        car("early", arrival=0, departure=2),
        car("off", participating=False),
        car("unplugged", charger_kw=0.0, compute_kw=0.5, participating=False),
    ]
    job = {"id": "j", "shards": 2, "value_per_shard": 1.0, "release": ts(1), "deadline": ts(3)}
    scenario = load_scenario(tiny([100] * 4, vehicles=cars, jobs=[job]))
    idx = build_index(scenario)
    assert {v for v, _ in idx.charge} == {"early", "off"}
    assert [s for v, s in idx.charge if v == "early"] == [0, 1]
    assert idx.running == [("early", 1)]  # job window ∩ usable slots, participating only
    assert idx.executions == [("j", "early", 1)]
    assert "unplugged" not in idx.vehicles  # nothing to decide
    assert set(idx.targets) == {"early"}  # the others stay past the horizon
    m, _ = build_model(scenario)
    assert m.nvariables() == len(idx.charge) + 1 + 1 + 1 + len(idx.soc) + len(idx.imports) + 1


def test_naive_timestamps_raise() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Horizon(start=datetime(2020, 6, 1), slot_minutes=15, slots=4)  # noqa: DTZ001


@pytest.mark.parametrize("strategy", ["milp", "greedy"])
def test_plan_scenario_refuses_a_plan_that_breaks_the_contract(
    solved: tuple[Scenario, Plan], strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checker runs after every solve: a strategy that returned a broken plan (here a real
    plan drained below the owner's floor afterwards) fails loudly, naming the rules."""
    scenario, _ = solved
    planned = solve_module._plan

    def broken(*args: object) -> Plan:
        plan = planned(*args)  # type: ignore[arg-type]
        return with_vehicle(plan, "a", charge_kw=(0.0,) * scenario.horizon.slots)

    monkeypatch.setattr(solve_module, "_plan", broken)
    with pytest.raises(PlanViolationError, match="plan breaks the contract") as raised:
        plan_scenario(scenario, strategy)
    assert {v.rule for v in raised.value.violations} >= {"3", "5"}
    assert raised.value.strategy == strategy
