"""What the API returns, as aligned plain-text tables or as JSON.

Each `*_text` function renders one view of `idlefleet.client.fleet` for a terminal; `as_json`
renders any of them (dataclasses, lists of them) as JSON with ISO 8601 UTC times. Numbers are
right-aligned; times are shown in UTC.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from idlefleet.client.fleet import (
    FleetStatus,
    Flexibility,
    JobStatus,
    PlanSummary,
    PlanView,
)

_TIME_FORMAT = "%Y-%m-%d %H:%M"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(row[i], int | float) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)]) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime(_TIME_FORMAT)
    return str(value)


def _fields(pairs: Sequence[tuple[str, object]]) -> str:
    """`name: value` lines, the values aligned."""
    width = max(len(name) for name, _ in pairs)
    return "".join(f"{name + ':':<{width + 1}} {_cell(value)}\n" for name, value in pairs)


def jobs_text(jobs: Sequence[JobStatus]) -> str:
    if not jobs:
        return "no jobs\n"
    return table(
        ["job", "state", "accepted", "in flight", "remaining", "total", "planned", "deadline UTC"],
        [
            (
                j.job_id,
                j.state,
                j.executions_accepted,
                j.executions_in_flight,
                j.executions_remaining,
                j.executions_total,
                j.executions_planned,
                j.deadline,
            )
            for j in jobs
        ],
    )


def job_text(job: JobStatus) -> str:
    return _fields(
        [
            ("job", job.job_id),
            ("state", job.state),
            ("model", job.model_uri),
            ("shards x replicas", f"{job.shards} x {job.replicas}"),
            ("sites", ", ".join(job.site_ids) or "any"),
            ("submitted UTC", job.submitted_at),
            ("window UTC", f"{_cell(job.release)} .. {_cell(job.deadline)}"),
            ("executions accepted", f"{job.executions_accepted} / {job.executions_total}"),
            ("in flight", job.executions_in_flight),
            ("remaining", job.executions_remaining),
            ("planned", job.executions_planned),
            ("failed results", job.failed_results),
            ("abandoned shards", ", ".join(map(str, job.abandoned_shards)) or "none"),
        ]
    )


def plan_summary_text(plan: PlanSummary) -> str:
    gap = "" if plan.gap_frac is None else f", gap {plan.gap_frac:.2%}"
    lines = [
        f"plan {plan.plan_id or '(what-if)'} revision {plan.revision}: {plan.strategy}, "
        f"{plan.status}{gap}, solved in {plan.solve_s:.1f} s",
        f"horizon {_cell(plan.horizon_start)} UTC, {plan.slots} slots of {plan.slot_minutes} min,"
        f" {plan.vehicles} cars",
        f"emissions {plan.kpis.emissions_kg:.1f} kg, grid {plan.kpis.grid_energy_kwh:.1f} kWh, "
        f"PV {plan.kpis.pv_energy_kwh:.1f} kWh, unmet shards {plan.kpis.unmet_shards}, "
        f"shortfall {plan.kpis.shortfall_kwh:.1f} kWh",
    ]
    lines += [
        f"  {s.vehicle_id} short {s.shortfall_kwh:.1f} kWh: {', '.join(s.limited_by)}"
        for s in plan.shortfalls
    ]
    lines += [f"intensity {region}: {source}" for region, source in plan.intensity_sources.items()]
    return "\n".join(lines) + "\n"


def fleet_text(status: FleetStatus) -> str:
    j = status.jobs
    head = [
        f"as of {_cell(status.as_of)} UTC; latest telemetry "
        f"{_cell(status.latest_telemetry)}{' UTC' if status.latest_telemetry else ''}",
        f"cars: {status.vehicles_known} known, {status.vehicles_parked} parked, "
        f"{status.vehicles_participating} computing",
        f"jobs: {j.pending} pending, {j.open} open, {j.done} done, {j.failed} failed, "
        f"{j.expired} expired, {j.cancelled} cancelled",
        "",
    ]
    sites = table(
        [
            "site",
            "region",
            "grid limit kW",
            "parked",
            "computing",
            "energy kWh",
            "battery kWh",
            "charger kW",
            "DR events",
        ],
        [
            (
                s.site_id,
                s.region,
                s.grid_limit_kw,
                s.vehicles_parked,
                s.vehicles_participating,
                s.energy_kwh,
                s.battery_kwh,
                s.charger_kw,
                ", ".join(s.dr_event_ids) or "-",
            )
            for s in status.sites
        ],
    )
    plan = "\nno plan yet\n" if status.plan is None else "\n" + plan_summary_text(status.plan)
    return "\n".join(head) + sites + plan


def plan_text(view: PlanView) -> str:
    rows = [
        (
            s.start,
            s.charge_power_kw,
            s.grid_import_kw,
            s.compute_power_kw,
            s.running_vehicles,
            s.parked_vehicles,
            s.energy_start_kwh,
            ", ".join(f"{job} x{n}" for job, n in sorted(s.shards_by_job.items())) or "-",
        )
        for s in view.slots
    ]
    headers = [
        "slot UTC",
        "charge kW",
        "import kW",
        "compute kW",
        "running",
        "parked",
        "energy kWh",
        "shards",
    ]
    return f"{view.scope}\n" + plan_summary_text(view.plan) + "\n" + table(headers, rows)


def flexibility_text(flex: Flexibility) -> str:
    rows = [
        (
            s.start,
            s.baseline_import_kw,
            s.import_cap_kw,
            s.add_power_kw,
            s.shed_power_kw,
            s.parked_vehicles,
            s.compute_capacity_shards,
            s.planned_shards,
        )
        for s in flex.slots
    ]
    headers = [
        "slot UTC",
        "import kW",
        "cap kW",
        "add kW",
        "shed kW",
        "parked",
        "capacity shards",
        "planned shards",
    ]
    return (
        f"{flex.scope} (each slot as if only it departs from the plan)\n"
        + plan_summary_text(flex.plan)
        + "\n"
        + table(headers, rows)
    )


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def as_json(value: object) -> str:
    """Any view (a dataclass, or a list of them) as indented JSON, times in ISO 8601."""
    return json.dumps(_plain(value), indent=2) + "\n"
