"""The fleet at a glance and as the planner would plan it now; copies of live state."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from idlefleet.queries.errors import PreconditionError
from idlefleet.queries.ports import FleetStatusView, JobRecord, SiteStatusView
from idlefleet.service.inputs import FallbackSource, JobDemand, RollingInputs, rolling_inputs
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import Scenario
from streams.messages import Telemetry
from streams.state import FleetState


def slot_floor(moment: datetime, slot_minutes: int) -> datetime:
    """The start of the slot holding `moment` (slots counted from UTC midnight)."""
    midnight = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    slot = timedelta(minutes=slot_minutes)
    return midnight + ((moment - midnight) // slot) * slot


def current_scenario(
    now: datetime,
    state: FleetState,
    demands: Sequence[JobDemand],
    sites: Sequence[SiteConfig],
    settings: PlannerSettings,
    fallback: FallbackSource | None = None,
) -> Scenario:
    """The scenario the planner would plan from the slot holding `now` (on the service's
    fallback intensity where nothing published covers it, when it has one);
    PreconditionError when nothing can be planned (no intensity signal covers that slot)."""
    return current_inputs(now, state, demands, sites, settings, fallback).scenario


def current_inputs(
    now: datetime,
    state: FleetState,
    demands: Sequence[JobDemand],
    sites: Sequence[SiteConfig],
    settings: PlannerSettings,
    fallback: FallbackSource | None = None,
) -> RollingInputs:
    """`current_scenario` with its intensity and the cars' data notes."""
    start = slot_floor(now, settings.slot_minutes)
    inputs = rolling_inputs(start, state, sites, demands, settings, fallback=fallback)
    if inputs is None:
        raise PreconditionError(f"nothing to plan at {start.isoformat()}: no intensity signal")
    return inputs


def state_copy(state: FleetState) -> FleetState:
    """A copy of `state` whose dicts no other thread changes.

    The service's reader thread replaces entries while the API reads; copying a dict is one
    C-level step under the GIL (entries are frozen messages), so the copy is consistent. A
    car's sources change in place, so each is copied too (its fields are replaced, never
    changed, so a shallow copy of its attributes is a consistent one).
    """
    return FleetState(
        vehicles=dict(state.vehicles),
        arrivals=dict(state.arrivals),
        solar=dict(state.solar),
        grid=dict(state.grid),
        dr_events=dict(state.dr_events),
        sources={vid: copy.copy(sources) for vid, sources in dict(state.sources).items()},
    )


@dataclass
class _Parked:
    """The cars parked at one site: counts [count], energy and capacity [kWh], chargers [kW]."""

    vehicles: int = 0
    participating: int = 0
    energy_kwh: float = 0.0
    battery_kwh: float = 0.0
    charger_kw: float = 0.0

    def add(self, telemetry: Telemetry) -> None:
        self.vehicles += 1
        self.participating += telemetry.participating
        self.energy_kwh += telemetry.energy_kwh
        self.battery_kwh += telemetry.battery_kwh
        self.charger_kw += telemetry.charger_kw


def _parked_by_site(state: FleetState) -> dict[str, _Parked]:
    """Totals of the parked cars (`FleetState.parked`) of each site."""
    by_site: dict[str, _Parked] = {}
    for telemetry in state.parked():
        assert telemetry.site_id is not None  # parked: at a site
        by_site.setdefault(telemetry.site_id, _Parked()).add(telemetry)
    return by_site


def fleet_status(
    state: FleetState, sites: Sequence[SiteConfig], jobs: Sequence[JobRecord], now: datetime
) -> FleetStatusView:
    """Counts of cars and jobs, and each site's parked cars, from a copy of the state."""
    by_site = _parked_by_site(state)
    site_views = []
    for site in sites:
        here = by_site.get(site.site_id, _Parked())
        site_views.append(
            SiteStatusView(
                site=site,
                vehicles_parked=here.vehicles,
                vehicles_participating=here.participating,
                energy_kwh=here.energy_kwh,
                battery_kwh=here.battery_kwh,
                charger_kw=here.charger_kw,
                dr_event_ids=tuple(
                    sorted(
                        event.event_id
                        for event in state.dr_events.values()
                        if event.end > now
                        and (event.site_id == site.site_id or event.region == site.region)
                    )
                ),
            )
        )
    return FleetStatusView(
        as_of=now,
        latest_telemetry=state.watermark(),
        vehicles_known=len(state.vehicles),
        vehicles_parked=sum(totals.vehicles for totals in by_site.values()),
        vehicles_participating=sum(totals.participating for totals in by_site.values()),
        sites=tuple(site_views),
        job_counts=Counter(record.state for record in jobs),
    )
