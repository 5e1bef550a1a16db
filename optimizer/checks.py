"""An independent checker of the contract's feasibility rules 1-8, energy balance and KPIs.

It reads only the scenario and the plan (never the formulation), so it judges MILP and baseline
plans alike. Tolerances are absolute, in the unit of the quantity checked ([kW], [kWh]).
Physics is hard for every strategy: grid limits, DR caps, floors and battery bounds. A
departure shortfall is reported, not a violation, except that a MILP plan must leave no more
than the least total shortfall the scenario allows (contract v2, objective 1).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from optimizer.energy import pv_used_kw, site_load_kw
from optimizer.kpis import compute_kpis, objective_value
from optimizer.plan import Plan
from optimizer.problem import Scenario
from optimizer.shortfall import MIN_SHORTFALL_KWH, least_total_shortfall_kwh
from optimizer.strategy import Strategy

DEFAULT_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``rule`` is ``"1"``..``"8"``, ``"structure"``, ``"energy"`` or
    ``"kpis"``; ``subject`` the id concerned; ``slot`` the slot or boundary if any."""

    rule: str
    subject: str
    slot: int | None
    message: str

    def __str__(self) -> str:
        where = "" if self.slot is None else f" @{self.slot}"
        return f"rule {self.rule} [{self.subject}{where}]: {self.message}"


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def check_plan(
    scenario: Scenario,
    plan: Plan,
    tolerance: float = DEFAULT_TOLERANCE,
    least_shortfall_kwh: float | None = None,
) -> list[Violation]:
    """Every violation of rules 1-8, energy balance and KPI consistency in ``plan``.

    A MILP plan's total shortfall is checked against ``least_shortfall_kwh`` [kWh] when the
    caller has it, else against the least computed here.

    An infeasible plan (version 1 only) has no schedule: it only needs a reason.
    """
    out: list[Violation] = []
    if not plan.is_feasible:
        if not plan.reason:
            out.append(Violation("structure", plan.strategy, None, "infeasible without a reason"))
        return out
    n = scenario.horizon.slots
    dt_h = scenario.horizon.dt_h
    tol = tolerance

    # structure ----------------------------------------------------------------------------
    for v in scenario.vehicles:
        vs = plan.vehicles.get(v.id)
        if vs is None:
            out.append(Violation("structure", v.id, None, "vehicle missing from the plan"))
            continue
        if len(vs.charge_kw) != n or len(vs.running) != n or len(vs.soc_kwh) != n + 1:
            out.append(Violation("structure", v.id, None, "array lengths must be N, N, N+1"))
    for site in scenario.sites:
        series = plan.grid_import_kw.get(site.id)
        if series is None or len(series) != n:
            out.append(Violation("structure", site.id, None, "grid_import_kw must have N values"))
    for job in scenario.jobs:
        if job.id not in plan.jobs:
            out.append(Violation("structure", job.id, None, "job missing from the plan"))
    unknown = set(plan.vehicles) - set(scenario.vehicle_by_id)
    if unknown:
        out.append(Violation("structure", ",".join(sorted(unknown)), None, "unknown vehicles"))
    if out:
        return out

    charge = {vid: vs.charge_kw for vid, vs in plan.vehicles.items()}
    for v in scenario.vehicles:
        vs = plan.vehicles[v.id]
        window = scenario.window(v)
        # rules 1 and 2
        for s in range(n):
            c, r = vs.charge_kw[s], vs.running[s]
            if r not in (0, 1):
                out.append(Violation("2", v.id, s, f"running must be 0 or 1, got {r}"))
            if c < -tol or c > v.charger_kw + tol:
                out.append(Violation("2", v.id, s, f"charge_kw {c} outside [0, {v.charger_kw}]"))
            if s not in window and (abs(c) > tol or r):
                out.append(Violation("1", v.id, s, "charges or runs outside its usable slots"))
            if r and not v.participating:
                out.append(Violation("1", v.id, s, "a non-participating vehicle runs"))
        # rule 3: reported soc follows the balance, None outside the window
        soc = vs.soc_kwh
        inside = set(window.boundaries)
        misplaced = [b for b in range(n + 1) if (soc[b] is None) == (b in inside)]
        if misplaced:
            out.append(
                Violation("3", v.id, misplaced[0], "soc must be given exactly on the window")
            )
            continue
        if len(window) == 0:
            continue
        first_soc = soc[window.first]
        assert first_soc is not None
        if not _close(first_soc, v.soc_kwh, tol):
            out.append(Violation("3", v.id, window.first, f"starts at {first_soc}, not soc_kwh"))
        level = v.soc_kwh
        floor, battery = v.floor_kwh, v.battery_kwh
        for s in window.slots:
            level += (
                v.charge_efficiency_frac * vs.charge_kw[s] * dt_h
                - v.compute_kw * vs.running[s] * dt_h
            )
            reported = soc[s + 1]
            assert reported is not None
            if not _close(reported, level, tol):
                out.append(Violation("3", v.id, s + 1, f"soc {reported} != balance {level}"))
            # rule 4
            if level < floor - tol or level > battery + tol:
                out.append(Violation("4", v.id, s + 1, f"soc {level} outside [{floor}, {battery}]"))
        # rule 5: soc + shortfall_kwh >= required_kwh, the shortfall reported as it is
        required = scenario.required_departure_kwh(v)
        short = 0.0 if required is None else max(0.0, required - level)
        if short <= MIN_SHORTFALL_KWH:
            short = 0.0
        if not _close(vs.shortfall_kwh, short, tol):
            out.append(
                Violation(
                    "5",
                    v.id,
                    window.last,
                    f"shortfall_kwh {vs.shortfall_kwh}, departs {short} short",
                )
            )

    # rules 6 and 7 ------------------------------------------------------------------------
    shards_at: dict[tuple[str, int], int] = defaultdict(int)
    per_job_vehicle: dict[tuple[str, str], int] = defaultdict(int)
    executions: dict[str, int] = defaultdict(int)
    job_slots = {j.id: set(scenario.job_slots(j)) for j in scenario.jobs}
    for a in plan.assignments:
        a_job = scenario.job_by_id.get(a.job)
        a_veh = scenario.vehicle_by_id.get(a.vehicle)
        if a_job is None or a_veh is None or not 0 <= a.slot < n or a.shards < 1:
            out.append(Violation("6", a.vehicle, a.slot, f"malformed assignment {a}"))
            continue
        if a.slot not in job_slots[a_job.id]:
            out.append(Violation("6", a.vehicle, a.slot, f"{a.job} runs outside its window"))
        if not a_job.allows_site(a_veh.site):
            out.append(Violation("6", a.vehicle, a.slot, f"{a.job} may not run at {a_veh.site}"))
        if not a_veh.participating:
            out.append(Violation("6", a.vehicle, a.slot, "non-participating vehicle given work"))
        shards_at[(a.vehicle, a.slot)] += a.shards
        per_job_vehicle[(a.job, a.vehicle)] += a.shards
        executions[a.job] += a.shards
    for (vid, s), shards in shards_at.items():
        sps = scenario.vehicle_by_id[vid].shards_per_slot
        if shards > sps * plan.vehicles[vid].running[s]:
            out.append(Violation("6", vid, s, f"{shards} shards > shards_per_slot * running"))
    for (jid, vid), shards in per_job_vehicle.items():
        if shards > scenario.job_by_id[jid].shards:
            out.append(Violation("7", vid, None, f"runs {shards} shards of {jid}, over shards"))
    for job in scenario.jobs:
        outcome = plan.jobs[job.id]
        if outcome.executions != executions[job.id]:
            out.append(Violation("7", job.id, None, "executions differ from the assignments"))
        if outcome.unmet < 0 or outcome.executions + outcome.unmet != job.executions_required:
            out.append(Violation("7", job.id, None, "executions + unmet != shards * replicas"))

    # rule 8 and site energy balance -------------------------------------------------------
    load = site_load_kw(scenario, charge)
    pv_used = pv_used_kw(scenario, charge)
    site_caps = {site.id: scenario.site_cap_kw(site) for site in scenario.sites}
    for site in scenario.sites:
        site_import = plan.grid_import_kw[site.id]
        for s in range(n):
            expected = max(0.0, load[site.id][s] - site.pv_kw[s])
            if not _close(site_import[s], expected, tol):
                out.append(
                    Violation("8", site.id, s, f"import {site_import[s]} != max(0, load - pv)")
                )
            if expected > site_caps[site.id][s] + tol:
                out.append(
                    Violation(
                        "8", site.id, s, f"import {expected} over cap {site_caps[site.id][s]}"
                    )
                )
            if not _close(site_import[s] + pv_used[site.id][s], load[site.id][s], tol):
                out.append(Violation("energy", site.id, s, "import + pv used != charging load"))
    for event, slots in scenario.region_caps():
        members = scenario.sites_in_region(event.region or "")
        for s in slots:
            total = sum(max(0.0, load[m.id][s] - m.pv_kw[s]) for m in members)
            if total > event.max_import_kw + tol:
                out.append(
                    Violation("8", event.id, s, f"region import {total} over {event.max_import_kw}")
                )

    # objective 1: a MILP plan leaves no more than the least total shortfall -------------------
    total_short = sum(vs.shortfall_kwh for vs in plan.vehicles.values())
    if plan.strategy == Strategy.MILP and total_short > MIN_SHORTFALL_KWH:
        least = (
            least_total_shortfall_kwh(scenario)
            if least_shortfall_kwh is None
            else least_shortfall_kwh
        )
        if total_short > least + MIN_SHORTFALL_KWH + 1e-6 * least:
            out.append(
                Violation(
                    "5", plan.strategy, None, f"total shortfall {total_short} above least {least}"
                )
            )

    # KPIs and objective -------------------------------------------------------------------
    kpis = compute_kpis(scenario, plan)
    if plan.kpis is None or any(
        not _close(float(a), float(b), 1e-6)
        for a, b in zip(plan.kpis.to_dict().values(), kpis.to_dict().values(), strict=True)
    ):
        out.append(Violation("kpis", plan.strategy, None, "KPIs differ from recomputation"))
    objective = objective_value(scenario, plan)
    if plan.objective is None or not math.isfinite(plan.objective):
        out.append(Violation("kpis", plan.strategy, None, "objective missing"))
    elif not _close(plan.objective, objective, 1e-6):
        out.append(
            Violation("kpis", plan.strategy, None, f"objective {plan.objective} != {objective}")
        )
    return out
