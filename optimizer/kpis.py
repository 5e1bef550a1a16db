"""Contract KPIs and objective of a schedule, independent of the strategy that made it.

Everything is recomputed from the charge power, running flags and shard assignments (soc by
rule 3, import by rule 8), so MILP and baseline plans are measured by the same yardstick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from optimizer.energy import (
    deficit_kwh,
    pv_used_kw,
    shortfall_kwh,
    site_import_kw,
    throughput_kwh,
)
from optimizer.plan import Assignment, Kpis, Plan
from optimizer.problem import Scenario

G_PER_KG = 1000.0
G_PER_TONNE = 1e6


def executions_by_job(scenario: Scenario, assignments: Iterable[Assignment]) -> dict[str, int]:
    done = {job.id: 0 for job in scenario.jobs}
    for a in assignments:
        done[a.job] = done.get(a.job, 0) + a.shards
    return done


def unmet_by_job(scenario: Scenario, assignments: Iterable[Assignment]) -> dict[str, int]:
    done = executions_by_job(scenario, assignments)
    return {j.id: max(0, j.executions_required - done[j.id]) for j in scenario.jobs}


def schedule_kpis(
    scenario: Scenario,
    charge_kw: Mapping[str, Sequence[float]],
    running: Mapping[str, Sequence[int]],
    assignments: Iterable[Assignment],
) -> Kpis:
    """KPIs of a schedule given as per-vehicle charge power [kW] and running flags."""
    dt_h = scenario.horizon.dt_h
    imports = site_import_kw(scenario, charge_kw)
    pv_used = pv_used_kw(scenario, charge_kw)
    grid_g = 0.0
    grid_kwh = 0.0
    cost = 0.0
    for site in scenario.sites:
        region = scenario.region_by_id[site.region]
        for s, imp_kw in enumerate(imports[site.id]):
            energy_kwh = imp_kw * dt_h
            grid_kwh += energy_kwh
            grid_g += energy_kwh * region.intensity_g_per_kwh[s]
            cost += energy_kwh * region.price_per_kwh[s]
    deferred_g = 0.0
    short_kwh = 0.0
    wear = 0.0
    total_throughput_kwh = 0.0
    n = scenario.horizon.slots
    for v in scenario.vehicles:
        charge = charge_kw.get(v.id, [0.0] * n)
        run = running.get(v.id, [0] * n)
        moved_kwh = throughput_kwh(scenario, v, charge, run)
        total_throughput_kwh += moved_kwh
        wear += v.wear_cost_per_kwh * moved_kwh
        short_kwh += shortfall_kwh(scenario, v, charge, run)
        gap_kwh = deficit_kwh(scenario, v, charge, run)
        deferred_g += (
            gap_kwh / v.charge_efficiency_frac * scenario.region_of(v).mean_intensity_g_per_kwh
        )
    unmet = sum(unmet_by_job(scenario, assignments).values())
    return Kpis(
        emissions_kg=(grid_g + deferred_g) / G_PER_KG,
        deferred_emissions_kg=deferred_g / G_PER_KG,
        grid_energy_kwh=grid_kwh,
        pv_energy_kwh=math.fsum(x for series in pv_used.values() for x in series) * dt_h,
        energy_cost=cost,
        wear_cost=wear,
        battery_throughput_kwh=total_throughput_kwh,
        unmet_shards=unmet,
        shortfall_kwh=short_kwh,
    )


def schedule_objective(
    scenario: Scenario,
    charge_kw: Mapping[str, Sequence[float]],
    running: Mapping[str, Sequence[int]],
    assignments: Iterable[Assignment],
) -> float:
    """The contract objective [currency]: grid carbon and energy cost, wear, unmet value and
    deficit valued at the region's mean intensity and price over the horizon."""
    dt_h = scenario.horizon.dt_h
    carbon_per_g = scenario.carbon_price_per_tonne / G_PER_TONNE
    imports = site_import_kw(scenario, charge_kw)
    total = 0.0
    for site in scenario.sites:
        region = scenario.region_by_id[site.region]
        for s, imp_kw in enumerate(imports[site.id]):
            total += (
                imp_kw
                * dt_h
                * (region.intensity_g_per_kwh[s] * carbon_per_g + region.price_per_kwh[s])
            )
    n = scenario.horizon.slots
    for v in scenario.vehicles:
        charge = charge_kw.get(v.id, [0.0] * n)
        run = running.get(v.id, [0] * n)
        moved_kwh = throughput_kwh(scenario, v, charge, run)
        total += v.wear_cost_per_kwh * moved_kwh
        region = scenario.region_of(v)
        total += (
            deficit_kwh(scenario, v, charge, run)
            / v.charge_efficiency_frac
            * (region.mean_intensity_g_per_kwh * carbon_per_g + region.mean_price_per_kwh)
        )
    unmet = unmet_by_job(scenario, assignments)
    total += sum(j.value_per_shard * unmet[j.id] for j in scenario.jobs)
    return total


def _schedule_of(plan: Plan) -> tuple[dict[str, tuple[float, ...]], dict[str, tuple[int, ...]]]:
    charge = {vid: vs.charge_kw for vid, vs in plan.vehicles.items()}
    running = {vid: vs.running for vid, vs in plan.vehicles.items()}
    return charge, running


def compute_kpis(scenario: Scenario, plan: Plan) -> Kpis:
    """KPIs of ``plan`` recomputed from its charge power, running flags and assignments."""
    charge, running = _schedule_of(plan)
    return schedule_kpis(scenario, charge, running, plan.assignments)


def objective_value(scenario: Scenario, plan: Plan) -> float:
    """The contract objective of ``plan`` [currency], recomputed from its schedule."""
    charge, running = _schedule_of(plan)
    return schedule_objective(scenario, charge, running, plan.assignments)
