"""One site's part of the current plan: its cars, the DR caps in force slot by slot, each
car's planned energy against its floor and target, and what each car's data lacked.

Read from a plan's `PlanViews` on request; a site's cars cost one pass over the plan's
vehicle-to-site array, a car's figures one row of the plan's arrays.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from idlefleet.queries.errors import UnknownIdError
from idlefleet.queries.views import PlanViews
from optimizer import Scenario
from streams.sources import DataNote

#: Energies closer than this are taken as equal (solver rounding) [kWh].
ENERGY_TOLERANCE_KWH = 1e-3


@dataclass(frozen=True)
class CarPath:
    """A car's planned energy against what it must keep and what its owner wants [kWh].

    `end_kwh` is the planned energy when the car leaves, or at the horizon's end for a car
    that stays past it (`leaves_in_horizon` False); `lowest_kwh` the least planned energy
    over its stay; `shortfall_kwh` what the plan leaves it short at departure.
    """

    vehicle_id: str
    charger_kw: float
    departure: datetime
    leaves_in_horizon: bool
    start_kwh: float
    end_kwh: float
    target_kwh: float | None
    floor_kwh: float
    lowest_kwh: float
    shortfall_kwh: float

    @property
    def below_target(self) -> bool:
        """The planned energy at the end is short of the owner's target."""
        return self.target_kwh is not None and self.end_kwh < self.target_kwh - (
            ENERGY_TOLERANCE_KWH
        )

    @property
    def below_floor(self) -> bool:
        """Some planned energy is under the car's floor (the plan should never do this)."""
        return self.lowest_kwh < self.floor_kwh - ENERGY_TOLERANCE_KWH


def site_vehicle_rows(views: PlanViews, site_id: str) -> list[int]:
    """The plan-array rows of the cars planned at `site_id`, in vehicle_id order; empty
    when the plan does not cover the site."""
    a = views.arrays
    if site_id not in a.site_ids:
        return []
    rows = np.flatnonzero(a.site_of_vehicle == a.site_ids.index(site_id)).tolist()
    return sorted(rows, key=lambda row: a.vehicle_ids[row])


def car_path(views: PlanViews, vehicle_id: str) -> CarPath:
    """The car's planned energy path in brief; UnknownIdError if the plan does not hold it."""
    a = views.arrays
    row = a.vehicle_row.get(vehicle_id)
    if row is None:
        raise UnknownIdError("vehicle in the current plan", vehicle_id)
    scenario = views.snapshot.scenario
    vehicle = scenario.vehicle_by_id[vehicle_id]
    energy = a.soc_kwh[row]
    planned = energy[~np.isnan(energy)]
    schedule = views.plan.vehicles.get(vehicle_id)
    end_kwh = float(energy[a.last_boundary[row]])
    return CarPath(
        vehicle_id=vehicle_id,
        charger_kw=vehicle.charger_kw,
        departure=vehicle.departure,
        leaves_in_horizon=scenario.departs_in_horizon(vehicle),
        start_kwh=vehicle.soc_kwh,
        end_kwh=vehicle.soc_kwh if math.isnan(end_kwh) else end_kwh,
        target_kwh=vehicle.target_kwh,
        floor_kwh=float(a.floor_kwh[row]),
        lowest_kwh=float(planned.min()) if planned.size else vehicle.soc_kwh,
        shortfall_kwh=0.0 if schedule is None else schedule.shortfall_kwh,
    )


def site_dr_caps_kw(scenario: Scenario, site_id: str) -> list[float | None]:
    """Per slot, the lowest DR cap on the site's own import in force [kW]; None where no
    site cap is (the plan honours the lower of it and the grid limit)."""
    caps: list[float | None] = [None] * scenario.horizon.slots
    for event in scenario.dr_events:
        if event.site == site_id:
            for s in scenario.dr_slots(event):
                held = caps[s]
                caps[s] = event.max_import_kw if held is None else min(held, event.max_import_kw)
    return caps


def region_dr_caps_kw(views: PlanViews, region: str) -> list[float | None]:
    """Per slot, the DR cap on the summed import of the region's sites [kW]; None where
    none is in force."""
    caps = views.arrays.region_cap_kw.get(region)
    if caps is None:
        return [None] * len(views.slot_start_s)
    return [None if math.isinf(cap) else float(cap) for cap in caps]


def data_note_of(views: PlanViews, vehicle_id: str) -> DataNote | None:
    """What the car's data lacked when the plan was made; None when the plan kept no note."""
    notes = views.data_notes
    i = bisect.bisect_left(notes, vehicle_id, key=lambda note: note.vehicle_id)
    return notes[i] if i < len(notes) and notes[i].vehicle_id == vehicle_id else None
