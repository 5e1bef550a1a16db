"""Fleet state: the latest of each vehicle, forecasts, grid signals and DR events.

State only moves forward in event time: telemetry older than what a vehicle already
reported is ignored, so late, duplicated or replayed records never roll it back.
Applying telemetry yields the fleet events that should trigger re-planning.

A car reports either version-1 `Telemetry` (everything in one message) or its three sources
apart (measured state, owner preferences, registry entry: streams.sources). The first record
of a source for a car that reported telemetry carries that telemetry over into its sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from streams.messages import (
    DemandResponseEvent,
    GridSignal,
    MeasuredState,
    OwnerPreferences,
    SolarForecast,
    Telemetry,
    VehicleRecord,
)
from streams.sources import DataNote, VehicleSources


class FleetEventKind(StrEnum):
    ARRIVED = "arrived"
    DEPARTED = "departed"
    PLUGGED_IN = "plugged-in"
    UNPLUGGED = "unplugged"
    CONSENT_WITHDRAWN = "consent-withdrawn"
    CONSENT_GIVEN = "consent-given"
    #: The owner moved the departure, or changed the reserve or the target.
    WISHES_CHANGED = "wishes-changed"
    #: The registry's entry for the car changed (battery, charger, compute, retired).
    REGISTRY_CHANGED = "registry-changed"
    #: The owner's consent rules changed in a way the view does not show.
    RULES_CHANGED = "rules-changed"
    #: The car's charger started or stopped following its profiles.
    CONTROL_CHANGED = "control-changed"


@dataclass(frozen=True)
class FleetEvent:
    kind: FleetEventKind
    vehicle_id: str
    site_id: str | None
    event_time: datetime


def _derive_events(before: Telemetry | None, after: Telemetry) -> list[FleetEvent]:
    def event(kind: FleetEventKind, site_id: str | None) -> FleetEvent:
        return FleetEvent(kind, after.vehicle_id, site_id, after.event_time)

    was_site = before.site_id if before else None
    was_plugged = bool(before and before.site_id and before.plugged_in)
    events: list[FleetEvent] = []
    if was_site is not None and was_site != after.site_id:
        events.append(event(FleetEventKind.DEPARTED, was_site))
    if after.site_id is not None and after.site_id != was_site:
        events.append(event(FleetEventKind.ARRIVED, after.site_id))
    is_plugged = after.site_id is not None and after.plugged_in
    if is_plugged and not was_plugged:
        events.append(event(FleetEventKind.PLUGGED_IN, after.site_id))
    if was_plugged and not is_plugged:
        events.append(event(FleetEventKind.UNPLUGGED, was_site))
    if before is not None and before.participating != after.participating:
        kind = (
            FleetEventKind.CONSENT_GIVEN
            if after.participating
            else FleetEventKind.CONSENT_WITHDRAWN
        )
        events.append(event(kind, after.site_id))
    stayed = before is not None and after.site_id is not None and before.site_id == after.site_id
    if stayed and before is not None and _wishes(before) != _wishes(after):
        events.append(event(FleetEventKind.WISHES_CHANGED, after.site_id))
    return events


def _content(record: VehicleRecord | None) -> dict[str, object] | None:
    """A registry entry without its date: what a change of entry changes."""
    return None if record is None else record.model_dump(exclude={"updated_at"})


def _wishes(telemetry: Telemetry) -> tuple[object, ...]:
    """What the owner asks of a parked car: departure, reserve and target."""
    return (telemetry.expected_departure, telemetry.reserve_kwh, telemetry.target_kwh)


@dataclass
class FleetState:
    """What the planner knows about the fleet and its surroundings."""

    vehicles: dict[str, Telemetry] = field(default_factory=dict)
    arrivals: dict[str, datetime] = field(default_factory=dict)
    solar: dict[str, SolarForecast] = field(default_factory=dict)
    grid: dict[str, GridSignal] = field(default_factory=dict)
    dr_events: dict[str, DemandResponseEvent] = field(default_factory=dict)
    sources: dict[str, VehicleSources] = field(default_factory=dict)

    def apply_telemetry(self, telemetry: Telemetry) -> list[FleetEvent]:
        """Take a vehicle's report if it is newer than the last; return derived events."""
        if telemetry.vehicle_id in self.sources:
            return self._update(telemetry.vehicle_id, lambda s: s.apply_report(telemetry))
        before = self.vehicles.get(telemetry.vehicle_id)
        if before is not None:
            if telemetry.event_time <= before.event_time:
                return []
            if (
                before.site_id == telemetry.site_id
                and before.plugged_in == telemetry.plugged_in
                and before.participating == telemetry.participating
                and _wishes(before) == _wishes(telemetry)
            ):  # the common case: a newer reading of a car that stays where it was
                self.vehicles[telemetry.vehicle_id] = telemetry
                return []
        self.vehicles[telemetry.vehicle_id] = telemetry
        events = _derive_events(before, telemetry)
        for event in events:
            if event.kind is FleetEventKind.ARRIVED:
                self.arrivals[telemetry.vehicle_id] = telemetry.event_time
            elif event.kind is FleetEventKind.DEPARTED:
                self.arrivals.pop(telemetry.vehicle_id, None)
        return events

    def apply_measured(self, measured: MeasuredState) -> list[FleetEvent]:
        """Take what a car, charger or bridge measured; return derived events."""
        return self._update(measured.vehicle_id, lambda s: s.apply_measured(measured))

    def apply_preferences(self, preferences: OwnerPreferences) -> list[FleetEvent]:
        """Take an owner's newest preferences; return derived events."""
        return self._update(preferences.vehicle_id, lambda s: s.apply_preferences(preferences))

    def apply_record(self, record: VehicleRecord) -> list[FleetEvent]:
        """Take the registry's newest entry for a car; return derived events."""
        return self._update(record.vehicle_id, lambda s: s.apply_record(record))

    def apply_compute(self, vehicle_id: str, start: datetime, end: datetime) -> None:
        """The car was given work over `[start, end)`: the energy estimate of a car whose
        energy is not read takes that much off (no events: the next plan sees it)."""
        sources = self.sources.get(vehicle_id)
        if sources is not None:
            sources.apply_compute(start, end)

    def data_note(self, vehicle_id: str) -> DataNote | None:
        """What is missing from a car's sources and how its energy is known; None for a car
        that reports version-1 telemetry (all of it, measured)."""
        sources = self.sources.get(vehicle_id)
        return None if sources is None else sources.note()

    def uncontrolled_kw(self) -> dict[str, float]:
        """Per site, grid power drawn by cars the plan cannot steer [kW] (see
        `VehicleSources.uncontrolled_kw`)."""
        out: dict[str, float] = {}
        for sources in self.sources.values():
            load_kw = sources.uncontrolled_kw()
            if load_kw > 0 and sources.site_id is not None:
                out[sources.site_id] = out.get(sources.site_id, 0.0) + load_kw
        return out

    def controllable(self, vehicle_id: str) -> bool:
        """False when the car's charger does not follow its profiles."""
        sources = self.sources.get(vehicle_id)
        return sources is None or sources.controllable

    def _update(
        self, vehicle_id: str, change: Callable[[VehicleSources], bool]
    ) -> list[FleetEvent]:
        sources = self.sources.get(vehicle_id)
        if sources is None:
            sources = self.sources[vehicle_id] = VehicleSources(vehicle_id)
            legacy = self.vehicles.get(vehicle_id)
            if legacy is not None:
                sources.apply_report(legacy)
        before = self.vehicles.get(vehicle_id)
        rules_before = sources.rules()
        record_before = _content(sources.record)
        controllable_before = sources.controllable
        if not change(sources):
            return []
        after = sources.view()
        events: list[FleetEvent] = []
        if after is None:
            self.vehicles.pop(vehicle_id, None)
            if before is not None and before.site_id is not None:
                events.append(
                    FleetEvent(
                        FleetEventKind.DEPARTED, vehicle_id, before.site_id, before.event_time
                    )
                )
                self.arrivals.pop(vehicle_id, None)
            return events
        self.vehicles[vehicle_id] = after
        events = _derive_events(before, after)
        site = after.site_id
        if before is not None and record_before != _content(sources.record):
            events.append(
                FleetEvent(FleetEventKind.REGISTRY_CHANGED, vehicle_id, site, after.event_time)
            )
        rules_after = sources.rules()
        if before is not None and rules_after != rules_before:
            events.append(
                FleetEvent(FleetEventKind.RULES_CHANGED, vehicle_id, site, after.event_time)
            )
        if sources.controllable != controllable_before:
            events.append(
                FleetEvent(FleetEventKind.CONTROL_CHANGED, vehicle_id, site, after.event_time)
            )
        for event in events:
            if event.kind is FleetEventKind.ARRIVED:
                self.arrivals[vehicle_id] = after.event_time
            elif event.kind is FleetEventKind.DEPARTED:
                self.arrivals.pop(vehicle_id, None)
        return events

    def apply_solar(self, forecast: SolarForecast) -> bool:
        """Keep the newest forecast per site; True when it replaced something."""
        current = self.solar.get(forecast.site_id)
        if current is not None and forecast.issued_at <= current.issued_at:
            return False
        self.solar[forecast.site_id] = forecast
        return True

    def apply_grid(self, signal: GridSignal) -> bool:
        """Keep the newest intensity signal per region; True when it replaced something."""
        current = self.grid.get(signal.region)
        if current is not None and signal.issued_at <= current.issued_at:
            return False
        self.grid[signal.region] = signal
        return True

    def apply_dr_event(self, event: DemandResponseEvent) -> bool:
        """Add, modify or cancel a DR event; True when the set of caps changed."""
        if event.cancelled:
            return self.dr_events.pop(event.event_id, None) is not None
        changed = self.dr_events.get(event.event_id) != event
        self.dr_events[event.event_id] = event
        return changed

    def parked(self) -> list[Telemetry]:
        """Vehicles at a site and plugged in, ordered by id."""
        return sorted(
            (t for t in self.vehicles.values() if t.site_id is not None and t.plugged_in),
            key=lambda t: t.vehicle_id,
        )

    def watermark(self) -> datetime | None:
        """The latest event time any vehicle has reported."""
        return max((t.event_time for t in self.vehicles.values()), default=None)
