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
    DataNote,
    FleetStatus,
    Flexibility,
    JobStatus,
    OwnerPreferences,
    PlanSummary,
    PlanView,
    VehicleEntry,
    VehicleRecord,
)

_TIME_FORMAT = "%Y-%m-%d %H:%M"
#: Cars a plan summary names for their data at most; the rest are counted.
MAX_NOTED_CARS = 20


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
    lines += _data_lines(plan.data_notes)
    return "\n".join(lines) + "\n"


def age_text(age_s: float | None) -> str:
    """An age [s] as `42 s`, `12 min`, `3.5 h` or `2.0 d`; `-` for None."""
    if age_s is None:
        return "-"
    if age_s < 120:
        return f"{age_s:.0f} s"
    if age_s < 7200:
        return f"{age_s / 60:.0f} min"
    if age_s < 172_800:
        return f"{age_s / 3600:.1f} h"
    return f"{age_s / 86_400:.1f} d"


def _energy_text(note: DataNote) -> str:
    """How the car's energy is known, in a few words."""
    if note.energy_source == "estimated":
        return (
            f"energy estimated (reading {age_text(note.energy_age_s)} old, "
            f"+{note.metered_since_kwh:.1f} kWh metered since)"
        )
    if note.energy_source == "unknown":
        return "energy unknown"
    return f"energy reading {age_text(note.energy_age_s)} old"


def data_note_text(note: DataNote) -> str:
    """One line: what the car lacks (an unknown energy among it), an estimated energy, a
    charger that is not steered; else how old its energy reading is."""
    parts = [f"lacks {', '.join(note.lacks)}"] if note.lacks else []
    if note.energy_source == "estimated" or (note.energy_source == "unknown" and not parts):
        parts.append(_energy_text(note))
    if not note.controllable:
        parts.append("charger does not follow profiles")
    return f"{note.vehicle_id}: {'; '.join(parts or [_energy_text(note)])}"


def _data_lines(notes: Sequence[DataNote]) -> list[str]:
    """A line per car whose data lacks something, is estimated or is not steered (at most
    MAX_NOTED_CARS, then a count)."""
    noted = [note for note in notes if note.noteworthy]
    if not notes:
        return []
    cars = f"{len(notes)} car{'' if len(notes) == 1 else 's'}"
    head = f"car data: {cars} on sources, {len(noted)} to note"
    lines = [head, *(f"  {data_note_text(note)}" for note in noted[:MAX_NOTED_CARS])]
    if len(noted) > MAX_NOTED_CARS:
        lines.append(f"  ... and {len(noted) - MAX_NOTED_CARS} more (--json lists them all)")
    return lines


def owner_text(preferences: OwnerPreferences) -> str:
    p = preferences
    rules = [
        f"only at {', '.join(p.only_at_sites)}" if p.only_at_sites else "at any site",
        "" if p.min_soc_frac is None else f"never below {p.min_soc_frac:.0%}",
        "only from solar surplus" if p.solar_surplus_only else "",
    ]
    updated = (
        "never (the planner's defaults)"
        if p.updated_at is None
        else f"{_cell(p.updated_at)} UTC by {p.updated_by or 'the car'}"
    )
    return _fields(
        [
            ("vehicle", p.vehicle_id),
            ("reserve kWh", p.reserve_kwh),
            ("target kWh", "the energy it has" if p.target_kwh is None else p.target_kwh),
            (
                "departure UTC",
                "unknown" if p.expected_departure is None else p.expected_departure,
            ),
            ("compute", "yes, " + ", ".join(r for r in rules if r) if p.participating else "no"),
            ("updated", updated),
        ]
    )


def vehicle_text(record: VehicleRecord) -> str:
    r = record
    return _fields(
        [
            ("vehicle", r.vehicle_id),
            ("battery kWh", r.battery_kwh),
            ("charger kW", r.charger_kw),
            ("charge efficiency", f"{r.charge_efficiency_frac:.2f}"),
            ("compute kW", r.compute_kw),
            ("shards per slot", r.shards_per_slot),
            ("wear cost per kWh", f"{r.wear_cost_per_kwh:g}"),
            ("accelerator", r.accelerator),
            ("home site", r.home_site_id),
            ("VIN", r.vin),
            ("id tokens", ", ".join(r.id_tokens) or None),
            ("EVSE", r.evse),
            ("retired", r.retired),
            ("updated UTC", r.updated_at),
        ]
    )


def vehicles_text(entries: Sequence[VehicleEntry]) -> str:
    if not entries:
        return "no cars\n"
    rows = []
    for e in entries:
        r, d = e.record, e.data
        rows.append(
            (
                e.vehicle_id,
                None if r is None else r.battery_kwh,
                None if r is None else r.charger_kw,
                None if r is None else r.compute_kw,
                None if r is None else r.home_site_id,
                "telemetry" if d is None else d.energy_source,
                "-" if d is None else age_text(d.energy_age_s),
                ("yes" if r.retired else "no") if r is not None else "-",
                "-" if d is None else "; ".join(d.lacks) or "-",
            )
        )
    headers = [
        "vehicle",
        "battery kWh",
        "charger kW",
        "compute kW",
        "home",
        "energy",
        "energy age",
        "retired",
        "lacks",
    ]
    return table(headers, rows)


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
