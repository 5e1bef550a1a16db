"""The My car page: one car's preferences as a form, what the current plan does to it
tonight, and a statement of the energy its accepted work used; read from a `FleetBackend`
on every request (the console keeps nothing).

Who may see what follows the gRPC API: the car's owner and operators read and set its
preferences (`GetOwnerPreferences`, `SetOwnerPreferences`); viewers see its plan and
statement only.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from idlefleet.queries.errors import InvalidFieldError
from idlefleet.queries.owners import stamped_preferences
from idlefleet.queries.ports import FleetBackend
from idlefleet.queries.views import PlanViews, Scope
from idlefleet.tokens import Role
from idlefleet.web.charts import Chart, Series
from idlefleet.web.sessions import Session
from streams.messages import OwnerPreferences
from streams.sources import DataNote

#: The `datetime-local` value of a departure [UTC, to the minute].
DEPARTURE_FORMAT = "%Y-%m-%dT%H:%M"
#: Errors of fields the form does not have are shown above it.
FORM = "form"


class Access(Enum):
    """What a session may do on a car's page."""

    EDIT = "edit"  # the car's owner, operators and admins: read and set preferences
    READ = "read"  # viewers: the plan and the statement, not the preferences
    REFUSED = "refused"  # an owner asking for another car


def access(session: Session, vehicle_id: str) -> Access:
    """The session's access to `vehicle_id`'s page (the gRPC API's owner-method rule)."""
    if session.role is Role.OWNER:
        return Access.EDIT if session.vehicle_id == vehicle_id else Access.REFUSED
    return Access.EDIT if session.role >= Role.OPERATOR else Access.READ


@dataclass(frozen=True)
class PreferencesForm:
    """The preferences form's fields as text (as stored, or as entered) and a problem per
    field name (`FORM` for one the form has no field for)."""

    participating: bool = False
    reserve_kwh: str = "0"
    target_kwh: str = ""
    expected_departure: str = ""  # DEPARTURE_FORMAT, UTC
    only_at_sites: tuple[str, ...] = ()
    min_soc_frac: str = ""
    solar_surplus_only: bool = False
    errors: Mapping[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None
    updated_by: str | None = None

    @classmethod
    def of(cls, preferences: OwnerPreferences | None) -> PreferencesForm:
        """The form filled with stored preferences (None: the planner's defaults)."""
        if preferences is None:
            return cls()
        departure = preferences.expected_departure
        return cls(
            participating=preferences.participating,
            reserve_kwh=f"{preferences.reserve_kwh:g}",
            target_kwh="" if preferences.target_kwh is None else f"{preferences.target_kwh:g}",
            expected_departure=""
            if departure is None
            else departure.astimezone(UTC).strftime(DEPARTURE_FORMAT),
            only_at_sites=tuple(preferences.rules.only_at_sites or ()),
            min_soc_frac=""
            if preferences.rules.min_soc_frac is None
            else f"{preferences.rules.min_soc_frac:g}",
            solar_surplus_only=preferences.rules.solar_surplus_only,
            updated_at=preferences.updated_at,
            updated_by=preferences.updated_by,
        )

    def refused(self, error: InvalidFieldError) -> PreferencesForm:
        """The same entries with `error` shown at its field."""
        name = error.path.removeprefix("rules.").split("[")[0]
        known = name in PreferencesForm.__dataclass_fields__ and name != "errors"
        return PreferencesForm(
            self.participating,
            self.reserve_kwh,
            self.target_kwh,
            self.expected_departure,
            self.only_at_sites,
            self.min_soc_frac,
            self.solar_surplus_only,
            {name if known else FORM: error.problem if known else str(error)},
        )

    def preferences(self, vehicle_id: str, now: datetime, by: str) -> OwnerPreferences:
        """The preferences entered, stamped at `now` by `by`, made by the same function as
        the gRPC API's (`stamped_preferences`); InvalidFieldError naming the field."""
        return stamped_preferences(
            vehicle_id,
            updated_at=now,
            updated_by=by,
            participating=self.participating,
            reserve_kwh=_number(self.reserve_kwh, "reserve_kwh") or 0.0,
            target_kwh=_number(self.target_kwh, "target_kwh"),
            expected_departure=_departure(self.expected_departure),
            only_at_sites=self.only_at_sites or None,
            min_soc_frac=_number(self.min_soc_frac, "rules.min_soc_frac"),
            solar_surplus_only=self.solar_surplus_only,
        )


def _number(text: str, path: str) -> float | None:
    """A form's number (None when left empty); InvalidFieldError naming `path`."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidFieldError(path, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidFieldError(path, f"{text!r} is not a finite number")
    return value


def _departure(text: str) -> datetime | None:
    """A `datetime-local` value read as UTC (None when left empty)."""
    if not text.strip():
        return None
    try:
        return datetime.strptime(text.strip()[:16], DEPARTURE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidFieldError(
            "expected_departure", f"{text!r} is not a date and time (YYYY-MM-DDTHH:MM, UTC)"
        ) from None


#: The least energy the page shows as a shortfall [kWh] (it prints tenths).
SHOWN_KWH = 0.05


@dataclass(frozen=True)
class Tonight:
    """What the current plan does to the car: per slot [UTC] its charging and compute power
    [kW] and its energy at slot start [kWh] (None: not parked; the slot it leaves at holds
    what it leaves with); its floor, what the plan owes
    it at departure (None: it leaves after the horizon) and what it plans it to hold then
    [kWh]; the compute energy the plan gives it [kWh]; and what its data lacked."""

    plan_start: datetime
    revision: int
    site_id: str
    arrival: datetime
    departure: datetime
    departs_in_horizon: bool
    slot_starts: tuple[datetime, ...]
    charge_kw: tuple[float, ...]
    compute_kw: tuple[float, ...]
    energy_kwh: tuple[float | None, ...]
    floor_kwh: float
    wished_kwh: float
    owed_kwh: float | None
    departure_kwh: float | None
    compute_energy_kwh: float
    note: DataNote | None
    #: The car's charger [kW], its region's carbon intensity per slot [g/kWh] and the
    #: plan's slot length [h].
    charger_kw: float = 0.0
    intensity_g_per_kwh: tuple[float, ...] = ()
    slot_h: float = 0.25

    @property
    def carbon_avoided_kg(self) -> float:
        """CO2 the plan's charging avoids against charging the same energy at full power
        from the car's first parked slot on (what it would draw plugged in unmanaged) [kg]."""
        parked = [energy is not None for energy in self.energy_kwh]
        avoided_kg = charging_carbon_avoided_kg(
            self.charge_kw, parked, self.charger_kw, self.intensity_g_per_kwh, self.slot_h
        )
        return round(avoided_kg, 2) + 0.0  # as shown, without a "-0.00"

    @property
    def power_chart(self) -> Chart:
        return Chart(
            id="car-power",
            title="Planned charging and compute",
            unit="kW",
            slot_starts=self.slot_starts,
            series=[
                Series("Charging [kW]", self.charge_kw),
                Series("Compute [kW]", self.compute_kw),
            ],
        )

    @property
    def energy_chart(self) -> Chart:
        n = len(self.slot_starts)
        series = [
            Series("Energy [kWh]", self.energy_kwh, "line"),
            Series("Floor [kWh]", [self.floor_kwh] * n, "limit"),
        ]
        if self.owed_kwh is not None:
            series.append(Series("Owed at departure [kWh]", [self.owed_kwh] * n, "limit"))
        return Chart(
            id="car-energy",
            title="Planned energy against floor and target",
            unit="kWh",
            slot_starts=self.slot_starts,
            series=series,
        )

    @property
    def short_kwh(self) -> float:
        """How far the planned departure energy falls below what is owed [kWh] (0: none, or
        less than the page's tenth of a kWh: the solver's tolerance, not a shortfall)."""
        if self.owed_kwh is None or self.departure_kwh is None:
            return 0.0
        short_kwh = self.owed_kwh - self.departure_kwh
        return short_kwh if short_kwh >= SHOWN_KWH else 0.0


def tonight(views: PlanViews | None, vehicle_id: str) -> Tonight | None:
    """The car's rows of the current plan (None: no plan, or the car is not in it)."""
    if views is None or vehicle_id not in views.arrays.vehicle_row:
        return None
    a = views.arrays
    row = a.vehicle_row[vehicle_id]
    scenario = views.snapshot.scenario
    vehicle = scenario.vehicles[row]
    series = views.slot_series(Scope("vehicle", vehicle_id))
    last = int(a.last_boundary[row])
    departure_kwh = float(a.soc_kwh[row, last])
    energy_kwh = list(series.energy_start_kwh)
    if last < len(energy_kwh) and not math.isnan(departure_kwh):
        energy_kwh[last] = departure_kwh  # what it leaves with, at the start of the slot it is gone
    return Tonight(
        plan_start=scenario.horizon.start,
        revision=views.revision,
        site_id=vehicle.site,
        arrival=vehicle.arrival,
        departure=vehicle.departure,
        departs_in_horizon=scenario.departs_in_horizon(vehicle),
        slot_starts=tuple(datetime.fromtimestamp(s, UTC) for s in views.slot_start_s),
        charge_kw=tuple(series.charge_power_kw),
        compute_kw=tuple(series.compute_power_kw),
        energy_kwh=tuple(energy_kwh),
        floor_kwh=vehicle.floor_kwh,
        wished_kwh=vehicle.wished_kwh,
        owed_kwh=scenario.required_departure_kwh(vehicle),
        departure_kwh=None if math.isnan(departure_kwh) else departure_kwh,
        compute_energy_kwh=sum(series.compute_power_kw) * scenario.horizon.dt_h,
        note=_note(views.data_notes, vehicle_id),
        charger_kw=vehicle.charger_kw,
        intensity_g_per_kwh=tuple(scenario.region_of(vehicle).intensity_g_per_kwh),
        slot_h=scenario.horizon.dt_h,
    )


def charging_carbon_avoided_kg(
    charge_kw: Sequence[float],
    parked: Sequence[bool],
    charger_kw: float,
    intensity_g_per_kwh: Sequence[float],
    dt_h: float,
) -> float:
    """The CO2 [kg] that charging at `charge_kw` per slot of `dt_h` hours emits less than
    charging the same energy at `charger_kw` in the first `parked` slots (never negative
    when the plan charges in the cleanest slots; negative when it charges dirtier)."""
    planned_g = sum(p * dt_h * i for p, i in zip(charge_kw, intensity_g_per_kwh, strict=True))
    left_kwh = sum(charge_kw) * dt_h
    unmanaged_g = 0.0
    for here, intensity in zip(parked, intensity_g_per_kwh, strict=True):
        if here and left_kwh > 0:
            energy_kwh = min(charger_kw * dt_h, left_kwh)
            unmanaged_g += energy_kwh * intensity
            left_kwh -= energy_kwh
    return (unmanaged_g - planned_g) / 1000


def _note(notes: Sequence[DataNote], vehicle_id: str) -> DataNote | None:
    """The car's note among notes in vehicle_id order (None: its data came whole)."""
    i = bisect.bisect_left(notes, vehicle_id, key=lambda note: note.vehicle_id)
    return notes[i] if i < len(notes) and notes[i].vehicle_id == vehicle_id else None


@dataclass(frozen=True)
class Statement:
    """The car's accepted work so far: executions [count], the battery energy they used
    [kWh] as the car reported it (compute power x runtime), when the first and last
    finished [UTC], and the compensation rate the service is configured with
    [currency/kWh] (None: none set)."""

    executions: int
    compute_energy_kwh: float
    first_at: datetime | None
    last_at: datetime | None
    compensation_per_kwh: float | None

    @property
    def compensation(self) -> float | None:
        """Rate x compute energy [currency]; None without a rate."""
        if self.compensation_per_kwh is None:
            return None
        return self.compensation_per_kwh * self.compute_energy_kwh


def statement(backend: FleetBackend, vehicle_id: str) -> Statement:
    results = backend.vehicle_results(vehicle_id)
    finished = [r.finished_at for r in results]
    return Statement(
        executions=len(results),
        compute_energy_kwh=math.fsum(r.energy_kwh for r in results),
        first_at=min(finished, default=None),
        last_at=max(finished, default=None),
        compensation_per_kwh=backend.settings.compensation_per_kwh,
    )


@dataclass(frozen=True)
class CarPage:
    """A car's page: its preferences form (None: this session may not read them), the
    configured sites its rules may name, tonight's plan and its statement."""

    vehicle_id: str
    access: Access
    form: PreferencesForm | None
    site_ids: tuple[str, ...]
    tonight: Tonight | None
    statement: Statement
    saved: bool = False


def car_page(
    backend: FleetBackend,
    vehicle_id: str,
    access_: Access,
    entered: PreferencesForm | None = None,
    saved: bool = False,
) -> CarPage:
    """The page of a car the backend knows (UnknownIdError otherwise); `entered` is a form
    refused, shown again instead of the stored preferences."""
    stored = backend.preferences(vehicle_id)  # UnknownIdError for a car nobody named
    form = None
    if access_ is Access.EDIT:
        form = entered if entered is not None else PreferencesForm.of(stored)
    return CarPage(
        vehicle_id=vehicle_id,
        access=access_,
        form=form,
        site_ids=tuple(site.site.site_id for site in backend.fleet_status().sites),
        tonight=tonight(backend.board.views, vehicle_id),
        statement=statement(backend, vehicle_id),
        saved=saved,
    )
