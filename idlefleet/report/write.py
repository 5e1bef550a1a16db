"""Write a report directory: kpis.json, report.html and the per-slot, per-vehicle, per-job
and per-day CSVs the figures come from (UTC times, units in the column names)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from idlefleet.report.days import DayResult
from idlefleet.report.html import render_html
from idlefleet.report.kpis import report_kpis
from optimizer import format_timestamp

REPORT_VERSION = 1
FILES = (
    ("report.html", "this report"),
    ("kpis.json", "every figure of the report, per strategy, with the inputs"),
    (
        "slots.csv",
        "per day, slot, strategy and site: actual and forecast intensity, PV, charging, "
        "compute, running cars, PV used and grid import",
    ),
    ("vehicles.csv", "per day, strategy and vehicle: energy, wear, carbon, target and floor"),
    ("jobs.csv", "per day, strategy and job: executions required and done"),
    ("days.csv", "per day and strategy: plan status, gap and the plan's contract KPIs"),
)
SLOT_COLUMNS = (
    "day", "slot_start", "strategy", "site", "region", "intensity_g_per_kwh",
    "forecast_g_per_kwh", "pv_kw", "charge_kw", "compute_kw", "running_vehicles",
    "pv_used_kw", "grid_import_kw",
)  # fmt: skip
VEHICLE_COLUMNS = (
    "day", "strategy", "vehicle", "site", "arrival", "departure", "battery_kwh",
    "charge_efficiency_frac", "arrival_kwh", "target_kwh", "floor_kwh", "owed_kwh",
    "departure_kwh", "lowest_kwh", "shortfall_kwh", "charge_energy_kwh", "compute_energy_kwh",
    "throughput_kwh", "deficit_kwh", "wear_cost", "emissions_kg", "target_met",
)  # fmt: skip
JOB_COLUMNS = ("day", "strategy", "job", "executions_required", "executions", "on_time")
DAY_KPI_COLUMNS = (
    "emissions_kg", "deferred_emissions_kg", "grid_energy_kwh", "pv_energy_kwh",
    "energy_cost", "wear_cost", "battery_throughput_kwh", "unmet_shards", "shortfall_kwh",
)  # fmt: skip
DAY_COLUMNS = ("day", "strategy", "status", "gap_frac", "forecaster", *DAY_KPI_COLUMNS, "reason")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_text(x) for x in row] for row in rows)


def slot_rows(days: Sequence[DayResult]) -> Iterable[list[object]]:
    for day in days:
        slot = timedelta(minutes=day.slot_minutes)
        starts = [format_timestamp(day.start + s * slot) for s in range(day.slots)]
        for name, run in day.strategies.items():
            for site, series in run.sites.items():
                region = day.site_region[site]
                forecast = (
                    None if day.forecast_g_per_kwh is None else day.forecast_g_per_kwh[region]
                )
                for s, start in enumerate(starts):
                    yield [
                        day.label, start, name, site, region,
                        float(day.actual_g_per_kwh[region][s]),
                        None if forecast is None else float(forecast[s]),
                        float(day.pv_kw[site][s]), float(series.charge_kw[s]),
                        float(series.compute_kw[s]), int(series.running_vehicles[s]),
                        float(series.pv_used_kw[s]), float(series.grid_import_kw[s]),
                    ]  # fmt: skip


def vehicle_rows(days: Sequence[DayResult]) -> Iterable[list[object]]:
    for day in days:
        for name, run in day.strategies.items():
            for v in run.vehicles:
                yield [
                    day.label, name, v.vehicle_id, v.site_id, v.arrival, v.departure,
                    v.battery_kwh, v.charge_efficiency_frac, v.arrival_kwh, v.target_kwh,
                    v.floor_kwh, v.owed_kwh, v.departure_kwh, v.lowest_kwh, v.shortfall_kwh,
                    v.charge_energy_kwh, v.compute_energy_kwh, v.throughput_kwh,
                    v.deficit_kwh, v.wear_cost, v.emissions_kg, int(v.target_met),
                ]  # fmt: skip


def job_rows(days: Sequence[DayResult]) -> Iterable[list[object]]:
    for day in days:
        for name, run in day.strategies.items():
            for j in run.jobs:
                yield [day.label, name, j.job_id, j.executions_required, j.executions,
                       int(j.on_time)]  # fmt: skip


def day_rows(days: Sequence[DayResult]) -> Iterable[list[object]]:
    for day in days:
        for name, run in day.strategies.items():
            k: dict[str, Any] = run.kpis.to_dict() if run.kpis else {}
            yield [
                day.label, name, run.status, run.gap_frac, day.forecaster,
                *(k.get(c) for c in DAY_KPI_COLUMNS), run.reason,
            ]  # fmt: skip


def write_report(
    out_dir: Path,
    days: Sequence[DayResult],
    strategies: Sequence[str],
    inputs: dict[str, Any],
) -> dict[str, Any]:
    """Write every file of the report into `out_dir` (created); return the kpis document."""
    kpis = {
        "report_version": REPORT_VERSION,
        "inputs": inputs,
        "days": len(days),
        **report_kpis(days, strategies, inputs["compensation_per_kwh"]),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(out_dir / "slots.csv", SLOT_COLUMNS, slot_rows(days))
    _write_csv(out_dir / "vehicles.csv", VEHICLE_COLUMNS, vehicle_rows(days))
    _write_csv(out_dir / "jobs.csv", JOB_COLUMNS, job_rows(days))
    _write_csv(out_dir / "days.csv", DAY_COLUMNS, day_rows(days))
    (out_dir / "kpis.json").write_text(json.dumps(kpis, indent=2) + "\n")
    compared = [d for d in days if d.all_planned]
    (out_dir / "report.html").write_text(render_html(kpis, compared, FILES))
    return kpis
