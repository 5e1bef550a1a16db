"""Validate → build → solve → extract: ``plan_scenario`` and the HiGHS solve.

A solve that ends without a usable schedule raises :class:`SolveError`; an infeasible scenario
gives a plan with status ``infeasible``, a reason and the offending ids.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from optimizer.assemble import assemble_plan, infeasible_plan
from optimizer.checks import check_plan
from optimizer.decompose import plan_decomposed
from optimizer.errors import PlanViolationError, SolveError
from optimizer.formulation import FormulationOptions, SparseIndex, build_model
from optimizer.plan import Assignment, Plan, SolveStatus
from optimizer.problem import Scenario

__all__ = ["SolveResult", "SolveStatus", "decomposes", "plan_scenario", "solve_model"]

DEFAULT_TIME_LIMIT_S = 30.0
DEFAULT_MIP_GAP_FRAC = 1e-4
#: absolute optimality gap [currency]. Parity makes some gaps unprovable by branching (an odd
#: number of shards on vehicles doing 2 per slot leaves one half-used running slot whose wear
#: and energy the LP bound never sees), so a cent is accepted as proof rather than a timeout.
DEFAULT_MIP_GAP_ABS = 1e-2
TOLERANCE_KWH = 1e-6
#: ``milp`` decomposes above this many vehicles or vehicle-job pairs (see ``decomposes``)
DECOMPOSE_ABOVE_VEHICLES = 200
DECOMPOSE_ABOVE_VEHICLE_JOBS = 25_000


_ONE_SOLVE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class SolveResult:
    """Outcome of one HiGHS run: status, incumbent, bound and timings [s]."""

    status: SolveStatus
    objective: float | None
    best_bound: float | None
    solve_s: float
    message: str


def solve_model(
    model: pyo.ConcreteModel,
    *,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    mip_gap_frac: float = DEFAULT_MIP_GAP_FRAC,
    mip_gap_abs: float = DEFAULT_MIP_GAP_ABS,
) -> SolveResult:
    """Solve ``model`` with HiGHS (in-process, via highspy) and load the incumbent if any.

    One solve at a time per process: Pyomo's solver interface redirects the process's
    stdout and stderr while it runs, and two at once (a service's tick and its health probe)
    break each other's redirection and can deadlock.
    """
    solver = Highs()
    if not solver.available():
        raise SolveError("HiGHS (highspy) is not available")
    started = time.perf_counter()
    try:
        with _ONE_SOLVE_AT_A_TIME:
            results = solver.solve(
                model,
                load_solutions=False,
                raise_exception_on_nonoptimal_result=False,
                time_limit=time_limit_s,
                rel_gap=mip_gap_frac,
                abs_gap=mip_gap_abs,
                solver_options={"output_flag": False, "threads": 1},
            )
    except Exception as exc:  # the solver wrapper raises several types
        raise SolveError(f"HiGHS failed: {exc}") from exc
    elapsed = time.perf_counter() - started
    term = results.termination_condition
    has_solution = results.solution_status in (SolutionStatus.feasible, SolutionStatus.optimal)
    bound = results.objective_bound
    best_bound = float(bound) if bound is not None and math.isfinite(bound) else None
    if term in (TerminationCondition.provenInfeasible, TerminationCondition.infeasibleOrUnbounded):
        return SolveResult(SolveStatus.infeasible, None, None, elapsed, str(term))
    if not has_solution:
        return SolveResult(SolveStatus.error, None, best_bound, elapsed, f"no solution ({term})")
    results.solution_loader.load_vars()
    status = (
        SolveStatus.optimal
        if term == TerminationCondition.convergenceCriteriaSatisfied
        else SolveStatus.feasible
    )
    objective = results.incumbent_objective
    return SolveResult(status, objective, best_bound, elapsed, str(term))


def _extract(
    scenario: Scenario, m: pyo.ConcreteModel, idx: SparseIndex
) -> tuple[dict[str, list[float]], dict[str, list[int]], list[Assignment]]:
    n = scenario.horizon.slots
    charge = {v.id: [0.0] * n for v in scenario.vehicles}
    running = {v.id: [0] * n for v in scenario.vehicles}
    for (vid, s), var in m.charge_kw.items():
        value = var.value or 0.0
        charge[vid][s] = min(max(value, 0.0), idx.vehicles[vid].charger_kw)
    for (vid, s), var in m.running.items():
        running[vid][s] = 1 if (var.value or 0.0) > 0.5 else 0
    assignments = []
    for (jid, vid, s), var in m.executions.items():
        shards = round(var.value or 0.0)
        if shards > 0:
            running[vid][s] = 1
            assignments.append(Assignment(job=jid, vehicle=vid, slot=s, shards=shards))
    for series in charge.values():
        for s, value in enumerate(series):
            if value < 1e-9:
                series[s] = 0.0
    return charge, running, assignments


def _single_vehicle_shortfalls(scenario: Scenario) -> dict[str, float]:
    """Cheap pre-check: each vehicle alone, charging at the most its charger and the site's
    caps (grid limit, site and region DR caps, plus PV) allow. Shortfall per vehicle [kWh]."""
    dt_h = scenario.horizon.dt_h
    region_cap = {site.id: [math.inf] * scenario.horizon.slots for site in scenario.sites}
    for event, slots in scenario.region_caps():
        members = scenario.sites_in_region(event.region or "")
        pv_total = [sum(s.pv_kw[k] for s in members) for k in range(scenario.horizon.slots)]
        for site in members:
            for k in slots:
                region_cap[site.id][k] = min(
                    region_cap[site.id][k], event.max_import_kw + pv_total[k]
                )
    site_caps = {site.id: scenario.site_cap_kw(site) for site in scenario.sites}
    short: dict[str, float] = {}
    for v in scenario.vehicles:
        required = scenario.required_departure_kwh(v)
        if required is None or required <= v.soc_kwh:
            continue
        site = scenario.site_by_id[v.site]
        reach = v.soc_kwh
        for k in scenario.window(v).slots:
            power = min(v.charger_kw, site_caps[v.site][k] + site.pv_kw[k], region_cap[v.site][k])
            reach += v.charge_efficiency_frac * power * dt_h
        if reach < required - TOLERANCE_KWH:
            short[v.id] = required - reach
    return short


def _binding_events(scenario: Scenario, vehicle_ids: Iterable[str]) -> list[str]:
    """DR events in force at an offending vehicle's site or region during its window."""
    out: list[str] = []
    for vid in vehicle_ids:
        v = scenario.vehicle_by_id[vid]
        window = set(scenario.window(v).slots)
        region = scenario.site_by_id[v.site].region
        for event in scenario.dr_events:
            if (event.site == v.site or event.region == region) and window & set(
                scenario.dr_slots(event)
            ):
                out.append(event.id)
    return out


def _elastic_shortfall(scenario: Scenario, options: FormulationOptions) -> dict[str, float]:
    m, _ = build_model(scenario, options)
    result = solve_model(m, time_limit_s=DEFAULT_TIME_LIMIT_S)
    if not result.status.has_schedule:
        raise SolveError(f"infeasibility attribution failed: {result.message}")
    return {
        vid: float(var.value or 0.0)
        for vid, var in m.shortfall_kwh.items()
        if (var.value or 0.0) > TOLERANCE_KWH
    }


def diagnose_infeasibility(scenario: Scenario) -> tuple[str, list[str]]:
    """Explain an infeasible scenario: which departure targets (rule 5) cannot be met, and
    whether DR events or site grid limits are to blame. Returns (reason, offending ids)."""
    base = FormulationOptions(include_jobs=False, elastic_targets=True)
    short = _single_vehicle_shortfalls(scenario) or _elastic_shortfall(scenario, base)
    if not short:
        return "HiGHS reports the scenario infeasible but no departure target is short", []
    vehicles = sorted(short)
    total = sum(short.values())
    without_dr = _elastic_shortfall(
        scenario, FormulationOptions(include_jobs=False, elastic_targets=True, relax_dr=True)
    )
    sites = sorted({scenario.vehicle_by_id[v].site for v in vehicles})
    if not without_dr:
        events = sorted(set(_binding_events(scenario, vehicles)))
        culprit = f"DR events {', '.join(events)}"
        offending = [*vehicles, *events]
    else:
        culprit = f"grid limits of sites {', '.join(sites)}"
        offending = [*vehicles, *sites]
        events = sorted(set(_binding_events(scenario, vehicles)))
        if events:
            culprit += f" and DR events {', '.join(events)}"
            offending += events
    reason = (
        f"departure targets (rule 5) cannot be met for vehicles {', '.join(vehicles)}: "
        f"{total:.3f} kWh short in total, limited by {culprit}"
    )
    return reason, offending


def plan_scenario(
    scenario: Scenario,
    strategy: str = "milp",
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
    mip_gap_frac: float = DEFAULT_MIP_GAP_FRAC,
    mip_gap_abs: float = DEFAULT_MIP_GAP_ABS,
) -> Plan:
    """Plan ``scenario`` with ``strategy`` (``milp``, ``immediate`` or ``greedy``), then check
    the plan against every rule of the contract (``check_plan``).

    ``milp`` solves the exact model, or, when the scenario is larger than
    :func:`decomposes` allows, the fleet decomposition (``optimizer.decompose``). The MILP stops
    at ``time_limit_s`` [s], at a relative gap of ``mip_gap_frac`` or at an absolute gap of
    ``mip_gap_abs`` [currency], whichever comes first; a stopped search gives status
    ``feasible`` with the gap reported. An infeasible scenario gives a plan with status
    ``infeasible``, ``reason`` and ``offending_ids``. Raises :class:`SolveError` when HiGHS
    ends without a schedule for another reason, and :class:`PlanViolationError` naming the
    violations when a plan breaks the contract.
    """
    plan = _plan(scenario, strategy, time_limit_s, mip_gap_frac, mip_gap_abs)
    violations = check_plan(scenario, plan)
    if violations:
        raise PlanViolationError(plan.strategy, violations)
    return plan


def decomposes(scenario: Scenario) -> bool:
    """Whether ``milp`` uses the decomposition: more than ``DECOMPOSE_ABOVE_VEHICLES`` vehicles,
    or more than ``DECOMPOSE_ABOVE_VEHICLE_JOBS`` vehicle-job pairs (the exact model has a
    variable per job, vehicle and slot)."""
    vehicles = len(scenario.vehicles)
    return (
        vehicles > DECOMPOSE_ABOVE_VEHICLES
        or vehicles * len(scenario.jobs) > DECOMPOSE_ABOVE_VEHICLE_JOBS
    )


def _plan(
    scenario: Scenario,
    strategy: str,
    time_limit_s: float,
    mip_gap_frac: float,
    mip_gap_abs: float,
) -> Plan:
    if strategy != "milp":
        from optimizer.baselines import run_baseline

        return run_baseline(scenario, strategy)
    started = time.perf_counter()
    short = _single_vehicle_shortfalls(scenario)
    if short:
        reason, offending = diagnose_infeasibility(scenario)
        return infeasible_plan("milp", reason, offending, solve_s=time.perf_counter() - started)
    if decomposes(scenario):
        return plan_decomposed(scenario, time_limit_s, mip_gap_frac, mip_gap_abs)
    m, idx = build_model(scenario)
    if m.nvariables() == 0:  # nothing to decide: every vehicle idles
        empty = assemble_plan(scenario, "milp", SolveStatus.optimal, {}, {}, [])
        return replace(
            empty, best_bound=empty.objective, gap_frac=0.0, solve_s=time.perf_counter() - started
        )
    result = solve_model(
        m, time_limit_s=time_limit_s, mip_gap_frac=mip_gap_frac, mip_gap_abs=mip_gap_abs
    )
    if result.status is SolveStatus.infeasible:
        reason, offending = diagnose_infeasibility(scenario)
        return infeasible_plan("milp", reason, offending, solve_s=time.perf_counter() - started)
    if result.status is SolveStatus.error:
        raise SolveError(f"HiGHS ended without a schedule: {result.message}")
    charge, running, assignments = _extract(scenario, m, idx)
    return assemble_plan(
        scenario,
        "milp",
        result.status,
        charge,
        running,
        assignments,
        best_bound=result.best_bound,
        solve_s=time.perf_counter() - started,
    )
