"""From fleet state to the scenario the service plans (a rolling horizon from the current slot).

Each scenario starts at the current slot, holds the cars parked now with the energy they last
reported, the work still open in the ledger, and the DR caps in force. It is built as typed
`optimizer` objects; `optimizer.scenario_to_dict` is the one writer of its JSON document.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from executor.ledger import JobLedger
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import DrEvent, Horizon, Region, Scenario, Site, Vehicle, format_timestamp
from optimizer import Job as ScenarioJob
from streams.messages import DemandResponseEvent, GridSignal, Job, SlotSeries, Telemetry
from streams.sources import DataNote
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
    out = _values_where_covered(series, values, start, slot, slots)
    if any(value is None for value in out):
        return None
    return tuple(value for value in out if value is not None)


def _values_where_covered(
    series: SlotSeries, values: Sequence[float], start: datetime, slot: timedelta, slots: int
) -> list[float | None]:
    """The value of `series` at each slot start of the planning grid, where the series
    spans the whole slot; None where it does not."""
    source_slot = timedelta(minutes=series.slot_minutes)
    end = series.start + len(values) * source_slot
    out: list[float | None] = []
    for i in range(slots):
        slot_start = start + i * slot
        index = math.floor((slot_start - series.start) / source_slot)
        covered = series.start <= slot_start and slot_start + slot <= end
        out.append(float(values[index]) if covered and 0 <= index < len(values) else None)
    return out


class FallbackSource(Protocol):
    """Where the service gets a fallback intensity (`forecast_messages.IntensityFallback`)."""

    def signal(
        self, region: str, start: datetime, slot_minutes: int, slots: int, issued_at: datetime
    ) -> GridSignal | None:
        """The fallback of `region` on the slots from `start`; None when it has none."""
        ...


@dataclass(frozen=True)
class RegionIntensity:
    """The intensity a plan uses for one region, and where it comes from."""

    region: str
    intensity_g_per_kwh: tuple[float, ...]
    #: The published signal's source, the fallback's ("fallback: ..."), or both.
    source: str
    #: Slots of the horizon filled from the fallback [count].
    fallback_slots: int
    #: The fallback fills the first slot: nothing published covers now.
    on_fallback: bool


def planning_intensity(
    now: datetime,
    state: FleetState,
    regions: Collection[str],
    settings: PlannerSettings,
    fallback: FallbackSource | None = None,
) -> dict[str, RegionIntensity]:
    """Each region's intensity for the horizon from `now` (a slot start); {} when there is
    nothing to plan on.

    Without a fallback the horizon (`settings.horizon_hours`) is shortened to what every
    region's published signal covers from `now`. With one, each slot takes the published
    value where a signal covers it and the fallback's otherwise, so the horizon is whole;
    a region the fallback has no data for is shortened as without one.
    """
    slot = timedelta(minutes=settings.slot_minutes)
    wanted = math.ceil(settings.horizon_hours * 60 / settings.slot_minutes)
    found = {}
    for region in sorted(regions):
        published = state.grid.get(region)
        live: list[float | None] = (
            [None] * wanted
            if published is None
            else _values_where_covered(published, published.intensity_g_per_kwh, now, slot, wanted)
        )
        substitute = None
        if fallback is not None and None in live:
            substitute = fallback.signal(region, now, settings.slot_minutes, wanted, now)
        filler = [] if substitute is None else substitute.intensity_g_per_kwh
        values = [
            value if value is not None else (float(filler[i]) if i < len(filler) else None)
            for i, value in enumerate(live)
        ]
        found[region] = (live, values, published, substitute)
    slots = min((_prefix(values) for _, values, _, _ in found.values()), default=0)
    if slots < 1:
        return {}
    out = {}
    for region, (live, values, published, substitute) in found.items():
        head = live[:slots]
        filled = sum(value is None for value in head)
        if filled == 0:
            assert published is not None
            source = published.source
        elif published is None or filled == slots:
            assert substitute is not None
            source = substitute.source
        elif head[0] is None:
            assert substitute is not None
            source = f"{substitute.source} (and {published.source} where it covers)"
        else:
            assert substitute is not None
            source = f"{published.source}, then {substitute.source}"
        out[region] = RegionIntensity(
            region=region,
            intensity_g_per_kwh=tuple(float(v) for v in values[:slots] if v is not None),
            source=source,
            fallback_slots=filled,
            on_fallback=head[0] is None,
        )
    return out


def _prefix(values: Sequence[float | None]) -> int:
    """How many values from the first are not None."""
    for i, value in enumerate(values):
        if value is None:
            return i
    return len(values)


@dataclass(frozen=True)
class RollingInputs:
    """A scenario to plan and the intensity it was built on."""

    scenario: Scenario
    intensity: Mapping[str, RegionIntensity]
    #: What the cars' sources lack and how each car's energy is known (cars at these sites,
    #: or at none known), by vehicle id.
    data_notes: tuple[DataNote, ...] = ()


def rolling_scenario(
    now: datetime,
    state: FleetState,
    sites: Sequence[SiteConfig],
    demands: Sequence[JobDemand],
    settings: PlannerSettings,
    shards_per_slot: Mapping[str, int] | None = None,
    fallback: FallbackSource | None = None,
) -> Scenario | None:
    """The scenario to plan from `now` (a slot start), or None when nothing can be planned.

    See `rolling_inputs`."""
    inputs = rolling_inputs(now, state, sites, demands, settings, shards_per_slot, fallback)
    return None if inputs is None else inputs.scenario


def rolling_inputs(
    now: datetime,
    state: FleetState,
    sites: Sequence[SiteConfig],
    demands: Sequence[JobDemand],
    settings: PlannerSettings,
    shards_per_slot: Mapping[str, int] | None = None,
    fallback: FallbackSource | None = None,
) -> RollingInputs | None:
    """The scenario to plan from `now` (a slot start) and its intensity, or None when nothing
    can be planned.

    The horizon is `settings.horizon_hours`, shortened to what the intensity signals cover
    (the fallback's too, when there is one: `planning_intensity`). `shards_per_slot`
    [count] overrides what some cars offer (silent or unreliable ones).
    """
    site_by_id = {site.site_id: site for site in sites}
    region_ids = {s.region for s in sites}
    intensity = planning_intensity(now, state, region_ids, settings, fallback)
    if not intensity:
        log.warning("no grid intensity signal covers %s: not planning", format_timestamp(now))
        return None
    slots = len(next(iter(intensity.values())).intensity_g_per_kwh)
    horizon = Horizon(start=now, slot_minutes=settings.slot_minutes, slots=slots)
    limits = shards_per_slot or {}
    site_pv = {site.site_id: _site(site, state, horizon) for site in sites}
    vehicles = [
        _vehicle(
            t,
            t.site_id,
            horizon,
            limits.get(t.vehicle_id, t.shards_per_slot),
            _consents_now(state, t, site_pv[t.site_id]),
        )
        for t in state.parked()
        if t.site_id is not None and t.site_id in site_by_id and state.controllable(t.vehicle_id)
    ]
    uncontrolled_kw = state.uncontrolled_kw()
    regions = [
        Region(
            id=region,
            intensity_g_per_kwh=intensity[region].intensity_g_per_kwh,
            price_per_kwh=(0.0,) * slots,
        )
        for region in sorted(intensity)
    ]
    scenario = Scenario(
        horizon=horizon,
        carbon_price_per_tonne=settings.carbon_price_per_tonne,
        regions=tuple(regions),
        sites=tuple(_less_uncontrolled(site_pv[site.site_id], uncontrolled_kw) for site in sites),
        vehicles=tuple(v for v in vehicles if v is not None),
        # Sorted, so that the plan does not depend on the order jobs arrived in.
        jobs=tuple(
            sorted(
                (job for demand in demands for job in _jobs(demand, horizon)), key=lambda j: j.id
            )
        ),
        dr_events=tuple(
            _cap_less_uncontrolled(dr_event_of(event), sites, uncontrolled_kw)
            for event in sorted(state.dr_events.values(), key=lambda e: e.event_id)
            if event.end > now
            and event.start < horizon.end
            and (event.site_id in site_by_id or event.region in region_ids)
        ),
    )
    notes = tuple(
        sources.note()
        for _, sources in sorted(state.sources.items())
        if sources.site_id is None or sources.site_id in site_by_id
    )
    return RollingInputs(scenario, intensity, notes)


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


def _consents_now(state: FleetState, t: Telemetry, site: Site) -> bool:
    """The owner's consent to compute, with the rules the view cannot hold: "only from solar
    surplus" consents only when the site has PV in the horizon (the dispatcher then runs the
    work only in slots whose planned import is zero: `dispatches.surplus_only`)."""
    if not t.participating:
        return False
    note = state.data_note(t.vehicle_id)
    return note is None or not note.rules.solar_surplus_only or any(site.pv_kw)


def _less_uncontrolled(site: Site, uncontrolled_kw: Mapping[str, float]) -> Site:
    """The site with its grid limit lowered by what cars the plan cannot steer draw [kW]."""
    load_kw = uncontrolled_kw.get(site.id, 0.0)
    if load_kw <= 0:
        return site
    return dataclasses.replace(site, grid_limit_kw=max(0.0, site.grid_limit_kw - load_kw))


def _cap_less_uncontrolled(
    event: DrEvent, sites: Sequence[SiteConfig], uncontrolled_kw: Mapping[str, float]
) -> DrEvent:
    """A DR cap lowered by what cars the plan cannot steer draw under it [kW]."""
    load_kw = sum(
        uncontrolled_kw.get(site.site_id, 0.0)
        for site in sites
        if site.site_id == event.site or (event.region is not None and site.region == event.region)
    )
    if load_kw <= 0:
        return event
    return dataclasses.replace(event, max_import_kw=max(0.0, event.max_import_kw - load_kw))


def _vehicle(
    t: Telemetry, site_id: str, horizon: Horizon, shards_per_slot: int, participating: bool
) -> Vehicle | None:
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
        participating=participating,
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
