"""Turn a raw schedule (charge power, running flags, assignments) into a :class:`Plan`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from optimizer.energy import shortfall_kwh, site_import_kw, soc_path_kwh
from optimizer.kpis import executions_by_job, schedule_kpis, schedule_objective, unmet_by_job
from optimizer.plan import Assignment, JobOutcome, Plan, SolveStatus, VehicleSchedule
from optimizer.problem import Scenario


def assemble_plan(
    scenario: Scenario,
    strategy: str,
    status: SolveStatus,
    charge_kw: Mapping[str, Sequence[float]],
    running: Mapping[str, Sequence[int]],
    assignments: Iterable[Assignment],
    *,
    best_bound: float | None = None,
    solve_s: float = 0.0,
) -> Plan:
    """A plan whose soc, site import, job outcomes, KPIs and objective follow from the schedule.

    ``gap_frac`` is ``(objective - best_bound) / max(|objective|, 1e-9)`` when a bound is given.
    """
    n = scenario.horizon.slots
    charge = {v.id: [float(x) for x in charge_kw.get(v.id, [0.0] * n)] for v in scenario.vehicles}
    run = {v.id: [int(x) for x in running.get(v.id, [0] * n)] for v in scenario.vehicles}
    ordered = tuple(sorted(assignments, key=lambda a: (a.slot, a.job, a.vehicle)))
    vehicles = {
        v.id: VehicleSchedule(
            charge_kw=tuple(charge[v.id]),
            running=tuple(run[v.id]),
            soc_kwh=tuple(soc_path_kwh(scenario, v, charge[v.id], run[v.id])),
            shortfall_kwh=shortfall_kwh(scenario, v, charge[v.id], run[v.id]),
        )
        for v in scenario.vehicles
    }
    imports = site_import_kw(scenario, charge)
    done = executions_by_job(scenario, ordered)
    unmet = unmet_by_job(scenario, ordered)
    objective = schedule_objective(scenario, charge, run, ordered)
    gap_frac: float | None = None
    if best_bound is not None:
        gap_frac = max(0.0, objective - best_bound) / max(abs(objective), 1e-9)
        if objective - best_bound < 1e-9:
            gap_frac = 0.0
    return Plan(
        strategy=strategy,
        status=status,
        objective=objective,
        best_bound=best_bound,
        gap_frac=gap_frac,
        solve_s=solve_s,
        vehicles=vehicles,
        assignments=ordered,
        grid_import_kw={sid: tuple(series) for sid, series in imports.items()},
        jobs={j.id: JobOutcome(executions=done[j.id], unmet=unmet[j.id]) for j in scenario.jobs},
        kpis=schedule_kpis(scenario, charge, run, ordered),
    )


def rescore_plan(scenario: Scenario, plan: Plan) -> Plan:
    """``plan``'s schedule as a plan of ``scenario``: soc, import, KPIs and objective computed
    anew (e.g. on the intensity that really happened, for a plan made on a forecast)."""
    return assemble_plan(
        scenario,
        plan.strategy,
        plan.status,
        {vid: vs.charge_kw for vid, vs in plan.vehicles.items()},
        {vid: vs.running for vid, vs in plan.vehicles.items()},
        plan.assignments,
    )
