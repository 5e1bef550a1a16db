"""From fleet state to a planning scenario (contract scenario-v1), and from a plan to dispatch.

The service plans on a rolling horizon: each scenario starts at the current slot, holds the
cars parked now with the energy they last reported, and the work still open in the ledger.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from executor.dispatch import SlotDispatch
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import Plan
from streams.messages import Job, SlotSeries, Telemetry
from streams.state import FleetState

log = logging.getLogger(__name__)

REPLICA_SUFFIX = "@r"


@dataclass(frozen=True)
class JobDemand:
    """Open work of one job: for each count k of open executions, how many shards have k."""

    job: Job
    shards_by_open_replicas: Mapping[int, int]


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _values_on_grid(
    series: SlotSeries, values: Sequence[float], start: datetime, slot: timedelta, slots: int
) -> list[float] | None:
    """Values of `series` at each slot start of the planning grid; None if not covered."""
    source_slot = timedelta(minutes=series.slot_minutes)
    out = []
    for i in range(slots):
        index = math.floor((start + i * slot - series.start) / source_slot)
        if not 0 <= index < len(values):
            return None
        out.append(float(values[index]))
    return out


def covered_slots(state: FleetState, regions: set[str], start: datetime, slot: timedelta) -> int:
    """How many slots from `start` every region's intensity signal covers."""
    ends = []
    for region in regions:
        signal = state.grid.get(region)
        if signal is None:
            return 0
        end = signal.start + len(signal.intensity_g_per_kwh) * timedelta(
            minutes=signal.slot_minutes
        )
        ends.append(end)
    if not ends:
        return 0
    return max(0, math.floor((min(ends) - start) / slot))


def scenario_document(
    now: datetime,
    state: FleetState,
    sites: Sequence[SiteConfig],
    demands: Sequence[JobDemand],
    settings: PlannerSettings,
    shards_per_slot: Mapping[str, int] | None = None,
) -> dict[str, Any] | None:
    """The scenario to plan from `now` (a slot start), or None when nothing can be planned.

    The horizon is `settings.horizon_hours`, shortened to what the intensity signals cover.
    `shards_per_slot` [count] overrides what some cars offer (silent or unreliable ones).
    """
    slot = timedelta(minutes=settings.slot_minutes)
    site_by_id = {site.site_id: site for site in sites}
    wanted = math.ceil(settings.horizon_hours * 60 / settings.slot_minutes)
    slots = min(wanted, covered_slots(state, {s.region for s in sites}, now, slot))
    if slots < 1:
        log.warning("no grid intensity signal covers %s: not planning", iso(now))
        return None
    end = now + slots * slot
    limits = shards_per_slot or {}
    vehicles = [
        _vehicle(t, now, end, slot, limits.get(t.vehicle_id, t.shards_per_slot))
        for t in state.parked()
        if t.site_id in site_by_id
    ]
    vehicles = [v for v in vehicles if v is not None]
    regions = []
    for region in sorted({site.region for site in sites}):
        signal = state.grid[region]
        intensity = _values_on_grid(signal, signal.intensity_g_per_kwh, now, slot, slots)
        assert intensity is not None  # covered_slots checked it
        regions.append({"id": region, "intensity_g_per_kwh": intensity})
    return {
        "scenario_version": 1,
        "horizon": {"start": iso(now), "slot_minutes": settings.slot_minutes, "slots": slots},
        "objective": {"carbon_price_per_tonne": settings.carbon_price_per_tonne},
        "regions": regions,
        "sites": [_site(site, state, now, slot, slots) for site in sites],
        "vehicles": vehicles,
        # Sorted, so that the plan does not depend on the order jobs arrived in.
        "jobs": sorted(
            (job for demand in demands for job in _jobs(demand, now, end)), key=lambda j: j["id"]
        ),
        "dr_events": [
            {
                "id": event.event_id,
                **({"site": event.site_id} if event.site_id else {"region": event.region}),
                "start": iso(event.start),
                "end": iso(event.end),
                "max_import_kw": event.max_import_kw,
            }
            for event in sorted(state.dr_events.values(), key=lambda e: e.event_id)
            if event.end > now
            and event.start < end
            and (event.site_id in site_by_id or event.region in {s.region for s in sites})
        ],
    }


def _site(
    site: SiteConfig, state: FleetState, now: datetime, slot: timedelta, slots: int
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": site.site_id,
        "region": site.region,
        "grid_limit_kw": site.grid_limit_kw,
    }
    forecast = state.solar.get(site.site_id)
    if forecast is not None:
        pv = _values_on_grid(forecast, forecast.pv_kw, now, slot, slots)
        if pv is None:
            log.warning("solar forecast for %s does not cover the horizon: PV taken as 0", site)
        else:
            doc["pv_kw"] = pv
    return doc


def _vehicle(
    t: Telemetry, now: datetime, end: datetime, slot: timedelta, shards_per_slot: int
) -> dict[str, Any] | None:
    """A parked car as a scenario vehicle arriving now; None if it has no usable slot."""
    # A car with no departure given owes no target inside this horizon.
    departure = t.expected_departure or end + slot
    if departure < now + slot:
        return None
    return {
        "id": t.vehicle_id,
        "site": t.site_id,
        "arrival": iso(now),
        "departure": iso(departure),
        "battery_kwh": t.battery_kwh,
        "soc_kwh": t.energy_kwh,
        "reserve_kwh": t.reserve_kwh,
        "target_kwh": t.target_kwh,
        "charger_kw": t.charger_kw,
        "charge_efficiency_frac": t.charge_efficiency_frac,
        "compute_kw": t.compute_kw,
        "shards_per_slot": shards_per_slot,
        "wear_cost_per_kwh": t.wear_cost_per_kwh,
        "participating": t.participating,
    }


def _jobs(demand: JobDemand, now: datetime, end: datetime) -> list[dict[str, Any]]:
    """One scenario job per group of shards with the same number of open executions."""
    job = demand.job
    if job.deadline <= now or job.release >= end:
        return []
    groups = {k: n for k, n in demand.shards_by_open_replicas.items() if k > 0 and n > 0}
    docs = []
    for k, n in sorted(groups.items()):
        doc: dict[str, Any] = {
            "id": job.job_id if len(groups) == 1 else f"{job.job_id}{REPLICA_SUFFIX}{k}",
            "shards": n,
            "replicas": k,
            "value_per_shard": job.value_per_shard,
            "release": iso(max(job.release, now)),
            "deadline": iso(job.deadline),
        }
        if job.sites is not None:
            doc["sites"] = list(job.sites)
        docs.append(doc)
    return docs


def job_of(scenario_job_id: str) -> str:
    """The ledger's job id behind a scenario job id."""
    return scenario_job_id.split(REPLICA_SUFFIX)[0]


def slot_dispatches(plan: Plan, slot: int) -> list[SlotDispatch]:
    """What each planned vehicle does in slot `slot` of the plan."""
    work: dict[str, dict[str, int]] = {}
    for a in plan.assignments:
        if a.slot == slot:
            by_job = work.setdefault(a.vehicle, {})
            by_job[job_of(a.job)] = by_job.get(job_of(a.job), 0) + a.shards
    return [
        SlotDispatch(
            vehicle_id=vehicle_id,
            charge_power_kw=max(0.0, schedule.charge_kw[slot]),
            shards_by_job=work.get(vehicle_id, {}),
        )
        for vehicle_id, schedule in sorted(plan.vehicles.items())
    ]


def safe_dispatch(t: Telemetry) -> SlotDispatch:
    """Owner-first fallback for a car without a plan: charge at full power below target."""
    power = t.charger_kw if t.energy_kwh < t.target_kwh else 0.0
    return SlotDispatch(vehicle_id=t.vehicle_id, charge_power_kw=power, shards_by_job={})
