"""Owner preferences and the fleet registry as adapters read and change them.

A car's preferences and registry entry live in fleet state (`streams.sources`); a car that
reports version-1 telemetry carries its preferences in each report. These functions read
them from a state that another thread may be changing: each read is one dict lookup or one
attribute (GIL-atomic; the messages are frozen), never an iteration of a live dict.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idlefleet.queries.errors import InvalidFieldError, UnknownIdError, validated
from streams.messages import OwnerPreferences, VehicleRecord
from streams.sources import DataNote, split_telemetry
from streams.state import FleetState

#: How often a read-back looks at state again [s].
READ_BACK_POLL_S = 0.02
#: Longest principal name a record keeps as its writer (OwnerPreferences.updated_by).
MAX_PRINCIPAL_CHARS = 200


@dataclass(frozen=True)
class VehicleEntry:
    """A car the service knows: its newest registry entry (None: none yet) and what its data
    lacks (None: it reports version-1 telemetry, everything in one message)."""

    vehicle_id: str
    record: VehicleRecord | None
    note: DataNote | None


def known(state: FleetState, vehicle_id: str) -> bool:
    """Whether any source or telemetry has named the car."""
    return vehicle_id in state.sources or vehicle_id in state.vehicles


def preferences_of(state: FleetState, vehicle_id: str) -> OwnerPreferences | None:
    """The owner's newest preferences (from a version-1 report for a car that sends those);
    None when none were set. UnknownIdError for a car the state does not know."""
    sources = state.sources.get(vehicle_id)
    if sources is not None:
        return sources.preferences
    legacy = state.vehicles.get(vehicle_id)
    if legacy is None:
        raise UnknownIdError("vehicle", vehicle_id)
    return split_telemetry(legacy)[1]


def record_of(state: FleetState, vehicle_id: str) -> VehicleRecord | None:
    """The car's newest registry entry (a version-1 report's battery and charger), or None."""
    sources = state.sources.get(vehicle_id)
    if sources is not None:
        return sources.record
    legacy = state.vehicles.get(vehicle_id)
    return None if legacy is None else split_telemetry(legacy)[2]


def stamped_preferences(
    vehicle_id: str,
    *,
    updated_at: datetime,
    updated_by: str,
    participating: bool,
    reserve_kwh: float,
    target_kwh: float | None,
    expected_departure: datetime | None,
    only_at_sites: Sequence[str] | None,
    min_soc_frac: float | None,
    solar_surplus_only: bool,
) -> OwnerPreferences:
    """An owner's preferences as a caller set them (energies [kWh], times UTC), stamped with
    when and by whom; InvalidFieldError naming the field (`target_kwh`, `rules.min_soc_frac`,
    ...) when they are malformed. Whether the fleet can plan with them is `check_preferences`.
    """
    rules: dict[str, Any] = {
        "only_at_sites": list(only_at_sites) if only_at_sites else None,
        "solar_surplus_only": solar_surplus_only,
    }
    if min_soc_frac is not None:
        rules["min_soc_frac"] = min_soc_frac
    fields: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "updated_at": updated_at,
        "reserve_kwh": reserve_kwh,
        "participating": participating,
        "rules": rules,
        "updated_by": updated_by[:MAX_PRINCIPAL_CHARS],
        "expected_departure": expected_departure,
    }
    if target_kwh is not None:
        fields["target_kwh"] = target_kwh
        if target_kwh < reserve_kwh:  # (NaN is refused below)
            raise InvalidFieldError(
                "target_kwh", f"{target_kwh:g} kWh is below reserve_kwh ({reserve_kwh:g})"
            )
    return validated(OwnerPreferences, fields, "")


def check_preferences(
    preferences: OwnerPreferences,
    now: datetime,
    site_ids: Collection[str],
    record: VehicleRecord | None,
) -> None:
    """InvalidFieldError naming the request field (`expected_departure`, `reserve_kwh`,
    `target_kwh`, `rules.only_at_sites[i]`) that the fleet cannot plan with: a departure not
    after `now`, a site not configured, energies above the registered battery [kWh]."""
    departure = preferences.expected_departure
    if departure is not None and departure <= now:
        raise InvalidFieldError(
            "expected_departure",
            f"{departure.isoformat()} is not after the service's now ({now.isoformat()})",
        )
    for index, site_id in enumerate(preferences.rules.only_at_sites or ()):
        if site_id not in site_ids:
            raise InvalidFieldError(f"rules.only_at_sites[{index}]", f"unknown site {site_id!r}")
    if record is not None:
        for name in ("reserve_kwh", "target_kwh"):
            energy_kwh: float | None = getattr(preferences, name)
            if energy_kwh is not None and energy_kwh > record.battery_kwh:
                raise InvalidFieldError(
                    name, f"{energy_kwh:g} kWh exceeds the car's battery ({record.battery_kwh:g})"
                )


def check_record(record: VehicleRecord, site_ids: Collection[str]) -> None:
    """InvalidFieldError for a home site that is not configured."""
    if record.home_site_id is not None and record.home_site_id not in site_ids:
        raise InvalidFieldError("vehicle.home_site_id", f"unknown site {record.home_site_id!r}")


@dataclass(frozen=True)
class VehiclePage:
    """Cars in vehicle_id order after a given id; `total` [count] of all the cars known."""

    entries: list[VehicleEntry]
    total: int
    more: bool


def vehicle_page(state: FleetState, after: str = "", limit: int | None = None) -> VehiclePage:
    """The cars the state knows whose ids sort after `after` ("": from the first), at most
    `limit` (None: all), with their entries and data notes (made for the page's cars only)."""
    sources = dict(state.sources)  # one C-level copy each: the reader may add cars meanwhile
    ids = sorted(sources.keys() | dict(state.vehicles).keys())
    first = bisect.bisect_right(ids, after) if after else 0
    last = len(ids) if limit is None else first + limit
    entries = [
        VehicleEntry(vid, None, None)
        if (s := sources.get(vid)) is None
        else VehicleEntry(vid, s.record, s.note())
        for vid in ids[first:last]
    ]
    return VehiclePage(entries, len(ids), last < len(ids))


def newer_or_same(stored: OwnerPreferences | VehicleRecord | None, sent: datetime) -> bool:
    """Whether `stored` is dated at or after `sent`: the record sent was read (or lost to a
    newer one)."""
    return stored is not None and stored.updated_at >= sent


def wait_for(read: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `read` until it is True or `timeout_s` passes; its last answer."""
    deadline = time.monotonic() + timeout_s
    while not read():
        if time.monotonic() >= deadline:
            return False
        time.sleep(READ_BACK_POLL_S)
    return True
