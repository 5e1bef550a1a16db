"""A simulated fleet for the demo: cars drawn from real Caltech sessions, batteries that
follow the charge power their agents are told, and telemetry published every slot.

Each car's arrival time of day, plugged duration and energy need come from one real
session of the Caltech ACN-Data set (March 2019), shifted to the site's local time.
Arrival rounds up and departure down to slot boundaries, as the scenario contract does.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import numpy as np

from idlefleet.sites import SiteConfig
from streams.messages import MeasuredState, OwnerPreferences, Telemetry, VehicleRecord

BATTERY_SIZES_KWH = (40.0, 58.0, 64.0, 77.0)
CHARGER_KW = 11.0
COMPUTE_KW = 0.3
WEAR_COST_PER_KWH = 0.03
TARGET_FRAC = 0.8
RESERVE_FRAC = 0.25
PARTICIPATION_FRAC = 0.9


@dataclass(frozen=True)
class Session:
    """One real charging session, in local time of day."""

    arrival_local_hour: float
    weekday: int
    plugged_hours: float
    energy_kwh: float


def load_sessions() -> list[Session]:
    """The 954 Caltech sessions shipped in idlefleet/data (see its README)."""
    text = (resources.files("idlefleet") / "data" / "caltech_sessions_2019-03.csv").read_text()
    return [
        Session(
            float(row["arrival_local_hour"]),
            int(row["weekday"]),
            float(row["plugged_hours"]),
            float(row["energy_kwh"]),
        )
        for row in csv.DictReader(text.splitlines())
    ]


@dataclass
class SimulatedCar:
    """A car whose battery follows its charger and accelerator. Implements ChargerControl."""

    vehicle_id: str
    site: SiteConfig
    arrival: datetime
    departure: datetime
    battery_kwh: float
    arrival_energy_kwh: float
    reserve_kwh: float
    target_kwh: float
    participating: bool
    charger_kw: float = CHARGER_KW
    charge_efficiency_frac: float = 0.92
    compute_kw: float = COMPUTE_KW
    wear_cost_per_kwh: float = WEAR_COST_PER_KWH
    energy_kwh: float = field(init=False)
    charge_kw_by_slot: dict[datetime, float] = field(default_factory=dict)
    compute_slots: set[datetime] = field(default_factory=set)
    departure_energy_kwh: float | None = None

    def __post_init__(self) -> None:
        self.energy_kwh = self.arrival_energy_kwh

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        """Hold `power_kw` [kW] over the slot; refuse what the charger cannot do."""
        if not self.is_parked(slot_start, slot_end):
            raise ValueError(f"{self.vehicle_id} is not plugged in at {slot_start.isoformat()}")
        if power_kw > self.charger_kw + 1e-9:
            raise ValueError(f"{power_kw} kW exceeds the {self.charger_kw} kW charger")
        self.charge_kw_by_slot[slot_start] = power_kw

    def room_kw(self, hours: float) -> float:
        """The most grid power the car takes for `hours` [h] before its battery is full [kW]."""
        room_kwh = max(0.0, self.battery_kwh - self.energy_kwh)
        return min(self.charger_kw, room_kwh / (self.charge_efficiency_frac * hours))

    def is_parked(self, slot_start: datetime, slot_end: datetime) -> bool:
        return self.arrival <= slot_start and slot_end <= self.departure

    def advance(self, slot_start: datetime, slot_end: datetime) -> None:
        """Move the battery through one slot [kWh]: charging in, computing out."""
        if not self.is_parked(slot_start, slot_end):
            return
        self.energy_kwh = self.energy_at(slot_start, slot_end)

    def energy_at(self, slot_start: datetime, moment: datetime) -> float:
        """Energy in the battery at `moment` of the slot that starts at `slot_start` [kWh]:
        its energy at the slot's start moved by the slot's charging and computing so far.
        The battery itself does not move (`advance` does that at the slot's end)."""
        dt_h = (moment - slot_start) / timedelta(hours=1)
        charge_kwh = (
            self.charge_efficiency_frac * self.charge_kw_by_slot.get(slot_start, 0.0) * dt_h
        )
        compute_kwh = self.compute_kw * dt_h if slot_start in self.compute_slots else 0.0
        return min(self.battery_kwh, max(0.0, self.energy_kwh + charge_kwh - compute_kwh))

    def telemetry(self, now: datetime) -> Telemetry | None:
        """What the car reports at `now`: parked, just departed, or nothing."""
        if self.arrival <= now < self.departure:
            return self.report(now)
        if now >= self.departure and self.departure_energy_kwh is None:
            self.departure_energy_kwh = self.energy_kwh
            return self.report(now)
        return None

    def report(self, now: datetime, energy_kwh: float | None = None) -> Telemetry:
        """The car's report at `now`, parked or away, with `energy_kwh` [kWh] (default: the
        battery's energy). Unlike `telemetry`, it reports every time and remembers nothing."""
        energy_kwh = self.energy_kwh if energy_kwh is None else energy_kwh
        common = {
            "vehicle_id": self.vehicle_id,
            "event_time": now,
            "energy_kwh": round(energy_kwh, 9),
            "battery_kwh": self.battery_kwh,
            "reserve_kwh": self.reserve_kwh,
            "target_kwh": self.target_kwh,
            "charger_kw": self.charger_kw,
            "charge_efficiency_frac": self.charge_efficiency_frac,
            "compute_kw": self.compute_kw,
            "wear_cost_per_kwh": self.wear_cost_per_kwh,
            "participating": self.participating,
        }
        if self.arrival <= now < self.departure:
            return Telemetry(
                **common,
                site_id=self.site.site_id,
                plugged_in=True,
                expected_departure=self.departure,
            )
        return Telemetry(**common, site_id=None, plugged_in=False)

    # -- the three sources apart (`demo --ocpp`: chargers meter, cars read now and then) ----
    def registry_record(self, at: datetime, evse: str | None = None) -> VehicleRecord:
        """The car's fleet registry entry, with the token it shows at its charger and the
        EVSE (`<station>/<evse>`) it is normally plugged into."""
        return VehicleRecord(
            vehicle_id=self.vehicle_id,
            updated_at=at,
            battery_kwh=self.battery_kwh,
            charger_kw=self.charger_kw,
            charge_efficiency_frac=self.charge_efficiency_frac,
            compute_kw=self.compute_kw,
            wear_cost_per_kwh=self.wear_cost_per_kwh,
            home_site_id=self.site.site_id,
            id_tokens=[self.id_token],
            evse=evse,
        )

    @property
    def id_token(self) -> str:
        """The RFID token the car's owner shows at a charger."""
        return f"RFID-{self.vehicle_id}"

    def owner_preferences(self, at: datetime) -> OwnerPreferences:
        """What the owner sets in their app when they park."""
        return OwnerPreferences(
            vehicle_id=self.vehicle_id,
            updated_at=at,
            reserve_kwh=self.reserve_kwh,
            target_kwh=max(self.target_kwh, self.reserve_kwh),
            expected_departure=self.departure,
            participating=self.participating,
        )

    def reading(self, at: datetime) -> MeasuredState:
        """The car's own report (its app): where it is and the energy in its battery."""
        parked = self.arrival <= at < self.departure
        return MeasuredState(
            vehicle_id=self.vehicle_id,
            event_time=at,
            source="car",
            site_id=self.site.site_id if parked else None,
            away=not parked,
            plugged_in=parked,
            energy_kwh=round(self.energy_kwh, 9),
        )


def generate_fleet(
    cars: int,
    sites: list[SiteConfig],
    start: datetime,
    hours: float,
    slot_minutes: int,
    rng: np.random.Generator,
    stay_past_end: bool = False,
) -> list[SimulatedCar]:
    """`cars` cars spread over `sites`, each from one real session that fits the horizon.

    A session longer than the horizon ends at its end (a closed day, as reports plan it),
    unless `stay_past_end`: then the car keeps its real departure and is still parked when
    the horizon ends (the demo and chaos runs; under the contract it owes nothing then)."""
    sessions = load_sessions()
    slot = timedelta(minutes=slot_minutes)
    end = start + timedelta(hours=hours)
    fleet = []
    for number in range(cars):
        site = sites[number % len(sites)]
        arrival, departure, session = _fitting_session(sessions, site, start, end, slot, rng)
        if not stay_past_end:
            departure = min(departure, end)
        battery_kwh = float(rng.choice(BATTERY_SIZES_KWH))
        target_kwh = TARGET_FRAC * battery_kwh
        need_kwh = min(session.energy_kwh, target_kwh - 0.1 * battery_kwh)
        fleet.append(
            SimulatedCar(
                vehicle_id=f"car-{number + 1:04d}",
                site=site,
                arrival=arrival,
                departure=departure,
                battery_kwh=battery_kwh,
                arrival_energy_kwh=round(target_kwh - need_kwh, 3),
                reserve_kwh=RESERVE_FRAC * battery_kwh,
                target_kwh=target_kwh,
                participating=bool(rng.random() < PARTICIPATION_FRAC),
            )
        )
    return fleet


def _fitting_session(
    sessions: list[Session],
    site: SiteConfig,
    start: datetime,
    end: datetime,
    slot: timedelta,
    rng: np.random.Generator,
) -> tuple[datetime, datetime, Session]:
    """Draw sessions until one gives at least two whole slots inside [start, end); return its
    arrival and its real departure (which may lie past `end`). A session that began before
    `start` and lasts into the horizon is a car already parked at `start`."""
    zone = ZoneInfo(site.timezone)
    local_day = start.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(1000):
        session = sessions[int(rng.integers(len(sessions)))]
        began = (local_day + timedelta(hours=session.arrival_local_hour)).astimezone(start.tzinfo)
        if began + timedelta(hours=session.plugged_hours) < start + 2 * slot:
            began += timedelta(days=1)
        arrival = _round_up(max(began, start), start, slot)
        departure = _round_down(began + timedelta(hours=session.plugged_hours), start, slot)
        if min(departure, end) - arrival >= 2 * slot:
            return arrival, departure, session
    raise ValueError("no Caltech session fits the demo horizon: make it longer")


def _round_up(moment: datetime, origin: datetime, slot: timedelta) -> datetime:
    return origin + math.ceil((moment - origin) / slot) * slot


def _round_down(moment: datetime, origin: datetime, slot: timedelta) -> datetime:
    return origin + math.floor((moment - origin) / slot) * slot
