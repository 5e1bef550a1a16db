"""Why a scenario is infeasible: which departure targets (rule 5) cannot be met, and whether
DR events or site grid limits are to blame."""

from __future__ import annotations

import math
from collections.abc import Iterable

from optimizer.errors import SolveError
from optimizer.formulation import FormulationOptions, build_model
from optimizer.milp_run import DEFAULT_TIME_LIMIT_S, solve_model
from optimizer.problem import Scenario

TOLERANCE_KWH = 1e-6


def single_vehicle_shortfalls(scenario: Scenario) -> dict[str, float]:
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
    short = single_vehicle_shortfalls(scenario) or _elastic_shortfall(scenario, base)
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
