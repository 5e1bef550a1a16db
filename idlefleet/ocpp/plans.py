"""A plan's charge powers for one car as the slots a TxProfile carries out.

A car the plan covers gets its planned grid power per slot [kW] over the plan's horizon
(`profiles.plan_schedule` keeps the slots not yet over and holds each within the EVSE's
limits). A car cannot charge below its EVSE's least current (IEC 61851: 6 A), so a planned
power under it would be a pause and the car would miss that energy: `least_power` turns
such a slot into the least power for the share of the slot that carries the same energy,
then a pause, where the site's import has room for the difference in that slot (its grid
limit and DR caps, less the plan's import: `Headroom`), so no limit is crossed.

A car the plan leaves out (its charger does not follow profiles, or its data does not
let it be planned) is the planner's uncontrolled load at full power: a session that holds an
earlier plan's profile gets full power over the horizon instead, so no stale limit stays.
"""

from __future__ import annotations

import math
from datetime import timedelta

from idlefleet.ocpp.profiles import SlotPower
from optimizer.plan import PlanSnapshot

#: Planned power below this counts as none [kW].
ZERO_KW = 1e-6


def planned_slots(snapshot: PlanSnapshot, vehicle_id: str) -> list[SlotPower] | None:
    """The car's planned power per slot of the plan's horizon; None if the plan has no car
    by that id."""
    schedule = snapshot.plan.vehicles.get(vehicle_id)
    if schedule is None:
        return None
    return _slots(snapshot, list(schedule.charge_kw))


def full_power_slots(snapshot: PlanSnapshot, max_power_kw: float) -> list[SlotPower]:
    """`max_power_kw` [kW] in every slot of the plan's horizon."""
    return _slots(snapshot, [max_power_kw] * snapshot.scenario.horizon.slots)


def _slots(snapshot: PlanSnapshot, powers_kw: list[float]) -> list[SlotPower]:
    horizon = snapshot.scenario.horizon
    return [
        SlotPower(horizon.slot_start(i), horizon.slot_start(i + 1), power_kw)
        for i, power_kw in enumerate(powers_kw[: horizon.slots])
    ]


class Headroom:
    """Grid import a plan leaves free in each slot [kW]: per site (its grid limit and site DR
    caps, less its planned import) and per region a DR cap binds (less its sites' import)."""

    def __init__(self, snapshot: PlanSnapshot) -> None:
        scenario, plan = snapshot.scenario, snapshot.plan
        slots = scenario.horizon.slots
        self._region_of = {site.id: site.region for site in scenario.sites}
        self._site_kw = {
            site.id: [
                cap - imported
                for cap, imported in zip(
                    scenario.site_cap_kw(site),
                    plan.grid_import_kw.get(site.id, (0.0,) * slots),
                    strict=False,
                )
            ]
            for site in scenario.sites
        }
        self._region_kw: dict[str, list[float]] = {}
        for event, covered in scenario.region_caps():
            assert event.region is not None
            free = self._region_kw.setdefault(event.region, [math.inf] * slots)
            for s in covered:
                imported = sum(
                    plan.grid_import_kw.get(site_id, (0.0,) * slots)[s]
                    for site_id, region in self._region_of.items()
                    if region == event.region
                )
                free[s] = min(free[s], event.max_import_kw - imported)

    def take(self, site_id: str, slot: int, power_kw: float) -> bool:
        """Take `power_kw` [kW] more import at `site_id` in `slot` if there is room."""
        site = self._site_kw.get(site_id)
        if site is None or not 0 <= slot < len(site) or site[slot] < power_kw:
            return False
        region = self._region_kw.get(self._region_of[site_id])
        if region is not None and region[slot] < power_kw:
            return False
        site[slot] -= power_kw
        if region is not None:
            region[slot] -= power_kw
        return True


def least_power(
    slots: list[SlotPower], least_kw: float, site_id: str, room: Headroom
) -> list[SlotPower]:
    """`slots` with each power below `least_kw` [kW] (and above none) carried out as
    `least_kw` for the part of its slot that holds the same energy (whole seconds, rounded
    up: the owner gets no less, and the import is `least_kw` however long), then a pause,
    where `room` has the difference at the car's site; else as planned (the station
    pauses: `profiles.clamp_kw`)."""
    out: list[SlotPower] = []
    for index, slot in enumerate(slots):
        if not ZERO_KW < slot.power_kw < least_kw or not room.take(
            site_id, index, least_kw - slot.power_kw
        ):
            out.append(slot)
            continue
        length_s = (slot.end - slot.start).total_seconds()
        on_s = min(length_s, math.ceil(length_s * slot.power_kw / least_kw))
        split = slot.start + timedelta(seconds=on_s)
        out += [SlotPower(slot.start, split, least_kw), SlotPower(split, slot.end, 0.0)]
    return [slot for slot in out if slot.end > slot.start]
