"""From a plan's slot to what each car does: its charge set-point and its shards per job.

Cars the plan does not cover (no plan yet, a car that arrived since) get the owner-first
fallback: they share what the site's connection and every cap in force leave after the
planned cars, most urgent first (least laxity), never more (physics first).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from executor.dispatch import SlotDispatch
from idlefleet.service.inputs import job_of
from idlefleet.sites import SiteConfig
from optimizer import Plan
from streams.messages import DemandResponseEvent, Telemetry


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


def surplus_only(
    dispatches: Sequence[SlotDispatch],
    solar_only: Collection[str],
    site_of: Mapping[str, str | None],
    planned_import_kw: Mapping[str, float],
) -> list[SlotDispatch]:
    """The dispatches with no work for cars whose owners compute only from solar surplus,
    in a slot where their site imports from the grid [kW]; their shards stay open."""
    out = []
    for d in dispatches:
        site = site_of.get(d.vehicle_id)
        importing = site is None or planned_import_kw.get(site, 0.0) > IMPORT_EPS_KW
        if d.vehicle_id in solar_only and d.shards_by_job and importing:
            d = SlotDispatch(vehicle_id=d.vehicle_id, charge_power_kw=d.charge_power_kw)
        out.append(d)
    return out


#: Planned import below this counts as none (solver round-off) [kW].
IMPORT_EPS_KW = 1e-6


@dataclass
class Headroom:
    """Grid import still free in one slot [kW]: per site, and per region that a DR cap binds."""

    site_kw: dict[str, float]
    region_kw: dict[str, float]

    def take(self, site: SiteConfig, wanted_kw: float) -> float:
        """Take up to ``wanted_kw`` at ``site``; return what was granted [kW]."""
        granted = min(wanted_kw, self.site_kw.get(site.site_id, 0.0))
        if site.region in self.region_kw:
            granted = min(granted, self.region_kw[site.region])
        granted = max(0.0, granted)
        self.site_kw[site.site_id] = self.site_kw.get(site.site_id, 0.0) - granted
        if site.region in self.region_kw:
            self.region_kw[site.region] -= granted
        return granted


def headroom(
    sites: Sequence[SiteConfig],
    caps: Iterable[DemandResponseEvent],
    now: datetime,
    planned_import_kw: Mapping[str, float],
) -> Headroom:
    """What each site's grid limit and the DR caps in force at ``now`` leave after the planned
    import [kW]. PV is not counted on: the fallback stays under the caps however clouds go."""
    site_kw = {site.site_id: site.grid_limit_kw for site in sites}
    region_kw: dict[str, float] = {}
    for cap in caps:
        if not cap.start <= now < cap.end:
            continue
        if cap.site_id is not None and cap.site_id in site_kw:
            site_kw[cap.site_id] = min(site_kw[cap.site_id], cap.max_import_kw)
        elif cap.region is not None:
            region_kw[cap.region] = min(
                region_kw.get(cap.region, cap.max_import_kw), cap.max_import_kw
            )
    for site in sites:
        used = planned_import_kw.get(site.site_id, 0.0)
        site_kw[site.site_id] -= used
        if site.region in region_kw:
            region_kw[site.region] -= used
    return Headroom(site_kw, region_kw)


def laxity_h(car: Telemetry, now: datetime) -> float:
    """Hours the car can still wait before charging at full power until its departure stops
    reaching its target; infinite without a departure or nothing owed [h]."""
    owed_kwh = car.target_kwh - car.energy_kwh
    if car.expected_departure is None or owed_kwh <= 0 or car.charger_kw <= 0:
        return math.inf
    left_h = (car.expected_departure - now) / timedelta(hours=1)
    return left_h - owed_kwh / (car.charge_efficiency_frac * car.charger_kw)


def owner_first(
    cars: Sequence[Telemetry],
    sites: Sequence[SiteConfig],
    room: Headroom,
    now: datetime,
    slot_minutes: int,
) -> list[SlotDispatch]:
    """Set-points for cars without a plan: each takes what it still owes this slot, at most its
    charger, most urgent first, within the ``room`` left [kW]; no compute."""
    site_by_id = {site.site_id: site for site in sites}
    dt_h = slot_minutes / 60
    out = []
    for car in sorted(cars, key=lambda c: (laxity_h(c, now), c.vehicle_id)):
        owed_kwh = max(0.0, car.target_kwh - car.energy_kwh)
        wanted_kw = min(car.charger_kw, owed_kwh / (car.charge_efficiency_frac * dt_h))
        site = site_by_id.get(car.site_id or "")
        power_kw = 0.0 if site is None or wanted_kw <= 0 else room.take(site, wanted_kw)
        out.append(SlotDispatch(vehicle_id=car.vehicle_id, charge_power_kw=power_kw))
    return out
