"""One car's three sources of truth, merged into the view the planner plans with.

What the car, its charger and its maker's stream measure (`MeasuredState`), what its owner
wants (`OwnerPreferences`) and what the car is (`VehicleRecord`, the fleet registry) arrive
on topics of their own, at their own pace. `VehicleSources` keeps the newest value of each
and makes the car's `Telemetry` view when the three together say enough to plan it, and a
`DataNote` saying what the view lacks and how old and how estimated its energy is.

Energy without a SoC reading: most AC chargers meter the energy they deliver but never the
car's state of charge. The estimate is the newest reading plus the grid energy metered since,
times the charge efficiency, less what computing could have drawn in the slots the car was
given work since (its compute power all slot: never more than it had), within the battery.
A reading from before the car's last arrival is not carried across the drive in between:
such a car lacks energy until a new reading arrives, and is not planned (its charger's
default profile charges it at full power).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from streams.messages import (
    ConsentRules,
    MeasuredState,
    OwnerPreferences,
    Telemetry,
    VehicleRecord,
)

EnergySource = Literal["reading", "estimated", "unknown"]

#: A reading this much older than the record that placed the car at its site still counts:
#: the car and its charger keep clocks of their own [s]. A minute's drive moves a battery by
#: a few hundred Wh at most.
ARRIVAL_SKEW = timedelta(minutes=1)


@dataclass(frozen=True)
class DataNote:
    """What the planner knows of one car's data: what is missing, and how good its energy is.

    Times are when each source last spoke (None: never); `metered_since_kwh` is the grid
    energy metered since the energy reading, which the estimate adds [kWh].
    """

    vehicle_id: str
    lacks: tuple[str, ...]
    energy_source: EnergySource
    energy_read_at: datetime | None
    metered_since_kwh: float
    measured_at: datetime | None
    preferences_at: datetime | None
    registry_at: datetime | None
    controllable: bool
    rules: ConsentRules

    def age_s(self, at: datetime | None, now: datetime) -> float | None:
        """Seconds from `at` to `now` (None for None)."""
        return None if at is None else max(0.0, (now - at).total_seconds())


@dataclass
class _Reading:
    """The newest energy reading and the session meter at that moment."""

    at: datetime
    energy_kwh: float | None
    soc_frac: float | None
    session_id: str | None
    metered_kwh: float


@dataclass
class _Meter:
    at: datetime
    session_id: str
    energy_kwh: float


@dataclass
class VehicleSources:
    """The newest of each source for one car (see the module's docstring)."""

    vehicle_id: str
    measured_at: datetime | None = None
    site_at: datetime | None = None
    site_id: str | None = None
    located: bool = False  # a record has said where the car is
    arrived_at: datetime | None = None
    plugged_at: datetime | None = None
    plugged_in: bool | None = None
    reading: _Reading | None = None
    meter: _Meter | None = None
    controllable_at: datetime | None = None
    controllable: bool = True
    power_at: datetime | None = None
    power_kw: float | None = None
    preferences: OwnerPreferences | None = None
    record: VehicleRecord | None = None
    #: Slots the car was given work in, since its energy reading: (start, end).
    compute_slots: list[tuple[datetime, datetime]] = field(default_factory=list)
    #: What the car last said of its owner's wishes and of itself in version-1 telemetry.
    _reported: tuple[dict[str, object], dict[str, object]] | None = None

    # -- updates ------------------------------------------------------------------------
    def apply_measured(self, m: MeasuredState) -> bool:
        """Take each field `m` says that is newer than what is known; True if any was."""
        changed = False
        t = m.event_time
        if self.measured_at is None or t > self.measured_at:
            self.measured_at = t
            changed = True
        if (m.site_id is not None or m.away) and (self.site_at is None or t >= self.site_at):
            site = None if m.away else m.site_id
            if site is not None and (site != self.site_id or not self.located):
                self.arrived_at = t
            changed |= site != self.site_id or not self.located
            self.site_id, self.site_at, self.located = site, t, True
        if m.plugged_in is not None and (self.plugged_at is None or t >= self.plugged_at):
            changed |= m.plugged_in != self.plugged_in
            self.plugged_in, self.plugged_at = m.plugged_in, t
        fresh_meter = self.meter is None or t >= self.meter.at
        if m.session_id is not None and m.session_energy_kwh is not None and fresh_meter:
            self.meter = _Meter(t, m.session_id, m.session_energy_kwh)
            changed = True
        if (m.energy_kwh is not None or m.soc_frac is not None) and (
            self.reading is None or t >= self.reading.at
        ):
            meter = self.meter if self.meter is not None and self.meter.at <= t else None
            self.compute_slots = [(s, e) for s, e in self.compute_slots if e > t]
            self.reading = _Reading(
                t,
                m.energy_kwh,
                m.soc_frac,
                meter.session_id if meter else None,
                meter.energy_kwh if meter else 0.0,
            )
            changed = True
        if m.power_kw is not None and (self.power_at is None or t >= self.power_at):
            self.power_kw, self.power_at = m.power_kw, t
        if m.controllable is not None and (
            self.controllable_at is None or t >= self.controllable_at
        ):
            changed |= m.controllable != self.controllable
            self.controllable, self.controllable_at = m.controllable, t
        return changed

    def apply_report(self, t: Telemetry) -> bool:
        """Take a version-1 report: its measurements always, its owner's wishes and its
        registry fields only when they differ from the car's previous report, so that what
        an owner or an operator set since (through the API) stays until the car says
        otherwise. True if anything changed."""
        measured, preferences, record = split_telemetry(t)
        reported = (
            preferences.model_dump(exclude={"updated_at"}),
            record.model_dump(exclude={"updated_at"}),
        )
        before, self._reported = self._reported, reported
        changed = self.apply_measured(measured)
        if before is None or before[0] != reported[0]:
            changed |= self.apply_preferences(preferences)
        if before is None or before[1] != reported[1]:
            changed |= self.apply_record(record)
        return changed

    def apply_compute(self, start: datetime, end: datetime) -> None:
        """The car was given work over `[start, end)` (for the energy estimate)."""
        self.compute_slots.append((start, end))

    def apply_preferences(self, p: OwnerPreferences) -> bool:
        """Take the owner's newest preferences; True when they replaced others."""
        if self.preferences is not None and p.updated_at <= self.preferences.updated_at:
            return False
        self.preferences = p
        return True

    def apply_record(self, r: VehicleRecord) -> bool:
        """Take the registry's newest entry for the car; True when it replaced another."""
        if self.record is not None and r.updated_at <= self.record.updated_at:
            return False
        self.record = r
        return True

    # -- what the planner sees ------------------------------------------------------------
    def energy(self) -> tuple[float | None, EnergySource, float]:
        """Energy in the battery [kWh], how it is known, and grid energy metered since the
        reading [kWh]."""
        reading, record = self.reading, self.record
        if record is None or reading is None:
            return None, "unknown", 0.0
        if not self._since_arrival(reading):
            return None, "unknown", 0.0  # read before the drive that brought it here
        read_kwh = (
            reading.energy_kwh
            if reading.energy_kwh is not None
            else (reading.soc_frac or 0.0) * record.battery_kwh
        )
        read_kwh = min(read_kwh, record.battery_kwh)
        meter = self.meter
        if meter is None or meter.at <= reading.at:
            meter = _Meter(reading.at, reading.session_id or "", reading.metered_kwh)
        baseline = reading.metered_kwh if meter.session_id == reading.session_id else 0.0
        metered_kwh = max(0.0, meter.energy_kwh - baseline)
        computed_kwh = record.compute_kw * sum(
            (end - max(start, reading.at)).total_seconds() / 3600.0
            for start, end in self.compute_slots
            if end > reading.at
        )
        if metered_kwh == 0.0 and computed_kwh == 0.0:
            return read_kwh, "reading", 0.0
        energy = read_kwh + metered_kwh * record.charge_efficiency_frac - computed_kwh
        return min(record.battery_kwh, max(0.0, energy)), "estimated", metered_kwh

    def _since_arrival(self, reading: _Reading) -> bool:
        """The reading was taken here: since the car arrived (within `ARRIVAL_SKEW`)."""
        return self.arrived_at is None or reading.at >= self.arrived_at - ARRIVAL_SKEW

    def lacks(self) -> list[str]:
        """What the car's data does not say that planning it needs, in words."""
        out = []
        if self.record is None:
            out.append("fleet registry entry (battery, charger, compute)")
        elif self.record.retired:
            out.append("an active registry entry (retired)")
        if not self.located:
            out.append("location")
        reading = self.reading
        if reading is None or not self._since_arrival(reading):
            out.append("energy reading since it arrived")
        if self.preferences is None:
            out.append("owner preferences (no consent to compute, no departure)")
        return out

    def uncontrolled_kw(self) -> float:
        """Grid power the car may draw beyond the plan's reach [kW]: at full power when its
        charger does not follow profiles, or when its data does not let it be planned (its
        charger's default profile charges at full power); 0 when not plugged in at a site."""
        if not (self.plugged_in and self.site_id is not None):
            return 0.0
        if self.controllable and self.view() is not None:
            return 0.0
        if self.record is not None:
            return self.record.charger_kw
        return self.power_kw or 0.0

    def rules(self) -> ConsentRules:
        """The owner's consent rules (none without preferences)."""
        return self.preferences.rules if self.preferences else ConsentRules()

    def note(self) -> DataNote:
        _, source, metered = self.energy()
        return DataNote(
            vehicle_id=self.vehicle_id,
            lacks=tuple(self.lacks()),
            energy_source=source,
            energy_read_at=self.reading.at if self.reading else None,
            metered_since_kwh=metered,
            measured_at=self.measured_at,
            preferences_at=self.preferences.updated_at if self.preferences else None,
            registry_at=self.record.updated_at if self.record else None,
            controllable=self.controllable,
            rules=self.rules(),
        )

    def view(self) -> Telemetry | None:
        """The car as the planner plans it, with the owner's rules compiled in; None when
        its data does not say enough (`lacks` says what)."""
        record, prefs = self.record, self.preferences
        energy_kwh, _, _ = self.energy()
        if (
            record is None
            or record.retired
            or not self.located
            or energy_kwh is None
            or self.measured_at is None
        ):
            return None
        rules = self.rules()
        reserve_kwh = min(prefs.reserve_kwh if prefs else 0.0, record.battery_kwh)
        if rules.min_soc_frac is not None:
            reserve_kwh = max(reserve_kwh, rules.min_soc_frac * record.battery_kwh)
        target_kwh = prefs.target_kwh if prefs and prefs.target_kwh is not None else energy_kwh
        participating = prefs is not None and prefs.participating
        if rules.only_at_sites is not None and self.site_id not in rules.only_at_sites:
            participating = False
        return Telemetry(
            vehicle_id=self.vehicle_id,
            event_time=self.measured_at,
            site_id=self.site_id,
            plugged_in=bool(self.plugged_in) and self.site_id is not None,
            energy_kwh=energy_kwh,
            battery_kwh=record.battery_kwh,
            reserve_kwh=reserve_kwh,
            target_kwh=min(max(target_kwh, reserve_kwh), record.battery_kwh),
            expected_departure=prefs.expected_departure if prefs else None,
            charger_kw=record.charger_kw,
            charge_efficiency_frac=record.charge_efficiency_frac,
            compute_kw=record.compute_kw,
            shards_per_slot=record.shards_per_slot,
            wear_cost_per_kwh=record.wear_cost_per_kwh,
            participating=participating,
            accelerator=record.accelerator,
        )


def split_telemetry(
    t: Telemetry,
) -> tuple[MeasuredState, OwnerPreferences, VehicleRecord]:
    """A version-1 combined report as the three sources it mixes (all dated its event time)."""
    measured = MeasuredState(
        vehicle_id=t.vehicle_id,
        event_time=t.event_time,
        source="car",
        site_id=t.site_id,
        away=t.site_id is None,
        plugged_in=t.plugged_in,
        energy_kwh=t.energy_kwh,
    )
    preferences = OwnerPreferences(
        vehicle_id=t.vehicle_id,
        updated_at=t.event_time,
        reserve_kwh=t.reserve_kwh,
        target_kwh=max(t.target_kwh, t.reserve_kwh),
        expected_departure=t.expected_departure,
        participating=t.participating,
    )
    record = VehicleRecord(
        vehicle_id=t.vehicle_id,
        updated_at=t.event_time,
        battery_kwh=t.battery_kwh,
        charger_kw=t.charger_kw,
        charge_efficiency_frac=t.charge_efficiency_frac,
        compute_kw=t.compute_kw,
        shards_per_slot=t.shards_per_slot,
        wear_cost_per_kwh=t.wear_cost_per_kwh,
        accelerator=t.accelerator,
    )
    return measured, preferences, record
