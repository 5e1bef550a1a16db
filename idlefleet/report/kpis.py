"""The report's KPIs: each strategy's contract KPIs summed over the days, and what the
report adds to them (savings, PV self-consumption, cycles, jobs, owners, owner statements).

Totals run over the days on which every strategy produced a plan, so the strategies are
compared on the same days; days where one did not are listed with the reason. Values are
rounded to 6 decimals so that the same inputs give the same file.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from idlefleet.report.days import DayResult, VehicleDay
from optimizer import Strategy

DECIMALS = 6
CONTRACT_KPIS = (
    "emissions_kg",
    "deferred_emissions_kg",
    "grid_energy_kwh",
    "pv_energy_kwh",
    "energy_cost",
    "wear_cost",
    "battery_throughput_kwh",
    "shortfall_kwh",
)


def _r(value: float) -> float:
    return round(value, DECIMALS)


def _frac(part: float, whole: float) -> float | None:
    return _r(part / whole) if whole > 0 else None


def report_kpis(
    days: Sequence[DayResult], strategies: Sequence[str], compensation_per_kwh: float
) -> dict[str, Any]:
    """`strategies`, `days_compared`, `days_excluded` and `forecast` of kpis.json."""
    compared = [d for d in days if d.all_planned]
    sums = {name: strategy_kpis(compared, name, compensation_per_kwh) for name in strategies}
    totals = {}
    for name, kpis in sums.items():
        savings: dict[str, float | None] = {}
        for baseline in (Strategy.IMMEDIATE, Strategy.GREEDY):
            base_kg = sums[baseline]["emissions_kg"]
            saved_kg = base_kg - kpis["emissions_kg"]
            savings[f"savings_vs_{baseline}_kg"] = _r(saved_kg)
            savings[f"savings_vs_{baseline}_pct"] = (
                _r(100.0 * saved_kg / base_kg) if base_kg > 0 else None
            )
        totals[name] = {"emissions_kg": kpis["emissions_kg"], **savings} | kpis
    return {
        "days_compared": len(compared),
        "days_excluded": [
            {"day": d.label, "strategy": s.strategy, "status": s.status, "reason": s.reason}
            for d in days
            for s in d.strategies.values()
            if not s.planned
        ],
        "strategies": totals,
        "forecast": forecast_skill(days),
    }


def strategy_kpis(
    days: Sequence[DayResult], name: str, compensation_per_kwh: float
) -> dict[str, Any]:
    """One strategy's totals over `days` (each planned by it)."""
    runs = [d.strategies[name] for d in days]
    contract = [run.kpis.to_dict() for run in runs if run.kpis is not None]
    vehicles = [(d.label, v) for d, run in zip(days, runs, strict=True) for v in run.vehicles]
    jobs = [j for run in runs for j in run.jobs]
    pv_generated_kwh = math.fsum(
        float(np.sum(pv)) * d.dt_h for d in days for pv in d.pv_kw.values()
    )
    pv_used_kwh = math.fsum(k["pv_energy_kwh"] for k in contract)
    met = [v for _, v in vehicles if v.target_met]
    on_time = [j for j in jobs if j.on_time]
    gaps = [run.gap_frac for run in runs if run.gap_frac is not None]
    return {
        **{key: _r(math.fsum(k[key] for k in contract)) for key in CONTRACT_KPIS},
        "emissions_marginal_kg": None,
        "unmet_shards": sum(int(k["unmet_shards"]) for k in contract),
        "pv_generated_kwh": _r(pv_generated_kwh),
        "pv_self_consumption_frac": _frac(pv_used_kwh, pv_generated_kwh),
        "charge_energy_kwh": _r(math.fsum(v.charge_energy_kwh for _, v in vehicles)),
        "compute_energy_kwh": _r(math.fsum(v.compute_energy_kwh for _, v in vehicles)),
        "equivalent_full_cycles": _r(
            math.fsum(v.throughput_kwh / (2.0 * v.battery_kwh) for _, v in vehicles)
        ),
        "jobs": len(jobs),
        "jobs_on_time": len(on_time),
        "jobs_on_time_frac": _frac(len(on_time), len(jobs)),
        "executions_required": sum(j.executions_required for j in jobs),
        "executions": sum(j.executions for j in jobs),
        "owner_days": len(vehicles),
        "owner_days_met": len(met),
        "owners_targets_met_frac": _frac(len(met), len(vehicles)),
        "owners_targets_missed": [
            {
                "day": day,
                "vehicle": v.vehicle_id,
                "owed_kwh": v.owed_kwh,
                "departure_kwh": _r(v.departure_kwh),
                "shortfall_kwh": _r(v.shortfall_kwh),
                "floor_kwh": v.floor_kwh,
                "lowest_kwh": _r(v.lowest_kwh),
            }
            for day, v in vehicles
            if not v.target_met
        ],
        "dr_events": sum(run.dr_events for run in runs),
        "dr_events_honoured": sum(run.dr_events_honoured for run in runs),
        "days_optimal": sum(run.status == "optimal" for run in runs),
        "max_gap_frac": _r(max(gaps)) if gaps else None,
        "owners": owner_statements([v for _, v in vehicles], compensation_per_kwh),
    }


def owner_statements(
    vehicles: Sequence[VehicleDay], compensation_per_kwh: float
) -> list[dict[str, Any]]:
    """Per owner (vehicle id, over every day): energy charged and given to compute [kWh],
    wear [currency], carbon attributable [kg], compensation for the compute energy
    [currency], days with the target and floor kept, and energy left short [kWh]."""
    by_owner: dict[str, list[VehicleDay]] = defaultdict(list)
    for v in vehicles:
        by_owner[v.vehicle_id].append(v)
    statements = []
    for owner in sorted(by_owner):
        rows = by_owner[owner]
        compute_kwh = math.fsum(v.compute_energy_kwh for v in rows)
        statements.append(
            {
                "vehicle": owner,
                "site": rows[0].site_id,
                "days": len(rows),
                "days_target_met": sum(v.target_met for v in rows),
                "shortfall_kwh": _r(math.fsum(v.shortfall_kwh for v in rows)),
                "charge_energy_kwh": _r(math.fsum(v.charge_energy_kwh for v in rows)),
                "compute_energy_kwh": _r(compute_kwh),
                "wear_cost": _r(math.fsum(v.wear_cost for v in rows)),
                "emissions_kg": _r(math.fsum(v.emissions_kg for v in rows)),
                "compensation": _r(compensation_per_kwh * compute_kwh),
            }
        )
    return statements


def forecast_skill(days: Sequence[DayResult]) -> dict[str, Any] | None:
    """Day-ahead forecast against actual intensity per region over every day [gCO2/kWh]:
    mean absolute error, bias (forecast minus actual), mean actual; None when the plans
    saw the actual series."""
    forecasts = [d.forecast_g_per_kwh for d in days]
    if not days or any(f is None for f in forecasts):
        return None
    regions: dict[str, Any] = {}
    for region in sorted(days[0].actual_g_per_kwh):
        actual = np.concatenate([d.actual_g_per_kwh[region] for d in days])
        forecast = np.concatenate([f[region] for f in forecasts if f is not None])
        regions[region] = {
            "mae_g_per_kwh": _r(float(np.mean(np.abs(forecast - actual)))),
            "bias_g_per_kwh": _r(float(np.mean(forecast - actual))),
            "mean_actual_g_per_kwh": _r(float(np.mean(actual))),
        }
    forecasters = Counter(d.forecaster for d in days if d.forecaster is not None)
    return {"regions": regions, "forecaster_days": dict(sorted(forecasters.items()))}
