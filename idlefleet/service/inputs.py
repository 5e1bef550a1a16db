"""From fleet state to the scenario the service plans (a rolling horizon from the current slot).

Each scenario starts at the current slot, holds the cars parked now with the energy they last
reported, the work still open in the ledger, and the DR caps in force. It is built as typed
`optimizer` objects; `optimizer.scenario_to_dict` is the one writer of its JSON document.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from executor.ledger import JobLedger
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import DrEvent, Horizon, Region, Scenario, Site, Vehicle, format_timestamp
from optimizer import Job as ScenarioJob
from streams.messages import DemandResponseEvent, Job, SlotSeries, Telemetry
from streams.state import FleetState

log = logging.getLogger(__name__)

#: A job whose shards need different numbers of executions is planned as one scenario job per
#: count: `<job_id>@r<count>`.
REPLICA_SUFFIX = "@r"


@dataclass(frozen=True)
class JobDemand:
    """Open work of one job: for each count k of open executions, how many shards have k."""

    job: Job
    shards_by_open_replicas: Mapping[int, int]


def open_demands(ledger: JobLedger, cancelled: Collection[str]) -> list[JobDemand]:
    """The open work of every registered job not cancelled, as the planner plans it."""
    return [
        JobDemand(job, ledger.shards_by_open_executions(job.job_id))
        for job in (ledger.job(job_id) for job_id in ledger.job_ids)
        if job is not None and job.job_id not in cancelled
    ]


def _values_on_grid(
    series: SlotSeries, values: Sequence[float], start: datetime, slot: timedelta, slots: int
) -> tuple[float, ...] | None:
    """Values of `series` at each slot start of the planning grid; None if not covered."""
    source_slot = timedelta(minutes=series.slot_minutes)
    out = []
    for i in range(slots):
        index = math.floor((start + i * slot - series.start) / source_slot)
        if not 0 <= index < len(values):
            return None
        out.append(float(values[index]))
    return tuple(out)


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


def rolling_scenario(
    now: datetime,
    state: FleetState,
    sites: Sequence[SiteConfig],
    demands: Sequence[JobDemand],
    settings: PlannerSettings,
    shards_per_slot: Mapping[str, int] | None = None,
) -> Scenario | None:
    """The scenario to plan from `now` (a slot start), or None when nothing can be planned.

    The horizon is `settings.horizon_hours`, shortened to what the intensity signals cover.
    `shards_per_slot` [count] overrides what some cars offer (silent or unreliable ones).
    """
    slot = timedelta(minutes=settings.slot_minutes)
    site_by_id = {site.site_id: site for site in sites}
    wanted = math.ceil(settings.horizon_hours * 60 / settings.slot_minutes)
    slots = min(wanted, covered_slots(state, {s.region for s in sites}, now, slot))
    if slots < 1:
        log.warning("no grid intensity signal covers %s: not planning", format_timestamp(now))
        return None
    horizon = Horizon(start=now, slot_minutes=settings.slot_minutes, slots=slots)
    limits = shards_per_slot or {}
    vehicles = [
        _vehicle(t, t.site_id, horizon, limits.get(t.vehicle_id, t.shards_per_slot))
        for t in state.parked()
        if t.site_id is not None and t.site_id in site_by_id
    ]
    regions = []
    for region in sorted({site.region for site in sites}):
        signal = state.grid[region]
        intensity = _values_on_grid(signal, signal.intensity_g_per_kwh, now, slot, slots)
        assert intensity is not None  # covered_slots checked it
        regions.append(
            Region(id=region, intensity_g_per_kwh=intensity, price_per_kwh=(0.0,) * slots)
        )
    region_ids = {s.region for s in sites}
    return Scenario(
        horizon=horizon,
        carbon_price_per_tonne=settings.carbon_price_per_tonne,
        regions=tuple(regions),
        sites=tuple(_site(site, state, horizon) for site in sites),
        vehicles=tuple(v for v in vehicles if v is not None),
        # Sorted, so that the plan does not depend on the order jobs arrived in.
        jobs=tuple(
            sorted(
                (job for demand in demands for job in _jobs(demand, horizon)), key=lambda j: j.id
            )
        ),
        dr_events=tuple(
            dr_event_of(event)
            for event in sorted(state.dr_events.values(), key=lambda e: e.event_id)
            if event.end > now
            and event.start < horizon.end
            and (event.site_id in site_by_id or event.region in region_ids)
        ),
    )


def dr_event_of(event: DemandResponseEvent) -> DrEvent:
    """A DR cap from the stream as a scenario DR event."""
    return DrEvent(
        id=event.event_id,
        site=event.site_id,
        region=event.region,
        start=event.start,
        end=event.end,
        max_import_kw=event.max_import_kw,
    )


def _site(site: SiteConfig, state: FleetState, horizon: Horizon) -> Site:
    forecast = state.solar.get(site.site_id)
    pv_kw = None
    if forecast is not None:
        pv_kw = _values_on_grid(
            forecast, forecast.pv_kw, horizon.start, horizon.slot_delta, horizon.slots
        )
        if pv_kw is None:
            log.warning("solar forecast for %s does not cover the horizon: PV taken as 0", site)
    return Site(
        id=site.site_id,
        region=site.region,
        grid_limit_kw=site.grid_limit_kw,
        pv_kw=pv_kw or (0.0,) * horizon.slots,
    )


def _vehicle(t: Telemetry, site_id: str, horizon: Horizon, shards_per_slot: int) -> Vehicle | None:
    """A parked car as a scenario vehicle arriving now; None if it has no usable slot."""
    # A car with no departure given owes no target inside this horizon.
    departure = t.expected_departure or horizon.end + horizon.slot_delta
    if departure < horizon.start + horizon.slot_delta:
        return None
    return Vehicle(
        id=t.vehicle_id,
        site=site_id,
        arrival=horizon.start,
        departure=departure,
        battery_kwh=t.battery_kwh,
        soc_kwh=t.energy_kwh,
        reserve_kwh=t.reserve_kwh,
        target_kwh=t.target_kwh,
        charger_kw=t.charger_kw,
        charge_efficiency_frac=t.charge_efficiency_frac,
        compute_kw=t.compute_kw,
        shards_per_slot=shards_per_slot,
        wear_cost_per_kwh=t.wear_cost_per_kwh,
        participating=t.participating,
    )


def _jobs(demand: JobDemand, horizon: Horizon) -> list[ScenarioJob]:
    """One scenario job per group of shards with the same number of open executions."""
    job = demand.job
    if job.deadline <= horizon.start or job.release >= horizon.end:
        return []
    groups = {k: n for k, n in demand.shards_by_open_replicas.items() if k > 0 and n > 0}
    return [
        ScenarioJob(
            id=job.job_id if len(groups) == 1 else f"{job.job_id}{REPLICA_SUFFIX}{k}",
            shards=n,
            replicas=k,
            value_per_shard=job.value_per_shard,
            release=max(job.release, horizon.start),
            deadline=job.deadline,
            sites=None if job.sites is None else tuple(job.sites),
        )
        for k, n in sorted(groups.items())
    ]


def job_of(scenario_job_id: str) -> str:
    """The ledger's job id behind a scenario job id."""
    return scenario_job_id.split(REPLICA_SUFFIX)[0]
