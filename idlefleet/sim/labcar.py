"""A lab's stand-in for a real car behind `idlefleet agent --lab-car SITE`: parked at a site
from the agent's start, its battery following the charge power the agent sets, reporting its
state as a car's telemetry would (signed with the car's key by the agent's publisher).

Until car makers' telemetry and chargers are bridged (OCPP, fleet-telemetry), this is how a
laptop runs real agent processes against `idlefleet serve`: the service sees cars, plans
them, and dispatches their charging and work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from streams.messages import Telemetry

SECONDS_PER_HOUR = 3600.0


@dataclass
class LabCar:
    """A parked car on `clock` [UTC]: energy [kWh] moves with the set charge power [kW] times
    the charge efficiency, and down with `compute_kw` [kW] while `computing()` says so."""

    vehicle_id: str
    site_id: str
    clock: Callable[[], datetime]
    departure: datetime
    battery_kwh: float = 60.0
    energy_kwh: float = 30.0
    reserve_kwh: float = 12.0
    target_kwh: float = 48.0
    charger_kw: float = 7.4
    compute_kw: float = 0.3
    charge_efficiency_frac: float = 0.92
    computing: Callable[[], bool] = lambda: False
    _power_kw: float = field(default=0.0, init=False)
    _since: datetime | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def parked(
        cls, vehicle_id: str, site_id: str, clock: Callable[[], datetime], hours: float
    ) -> LabCar:
        """A car that arrived now at `site_id` and leaves `hours` [h] later."""
        return cls(vehicle_id, site_id, clock, clock() + timedelta(hours=hours))

    def set_charge_power_kw(
        self, slot_start: datetime, slot_end: datetime, power_kw: float
    ) -> None:
        """Draw `power_kw` [kW] from now on (the charger's limit refuses more)."""
        if power_kw > self.charger_kw + 1e-9:
            raise ValueError(f"{power_kw} kW exceeds the {self.charger_kw} kW charger")
        with self._lock:
            self._settle()
            self._power_kw = max(0.0, power_kw)

    def _settle(self) -> None:
        """Move the battery to now (hold the lock)."""
        now = self.clock()
        if self._since is not None and now > self._since:
            hours = (now - self._since).total_seconds() / SECONDS_PER_HOUR
            gained_kwh = self.charge_efficiency_frac * self._power_kw * hours
            spent_kwh = self.compute_kw * hours if self.computing() else 0.0
            self.energy_kwh = min(
                self.battery_kwh, max(0.0, self.energy_kwh + gained_kwh - spent_kwh)
            )
        self._since = now

    def telemetry(self) -> Telemetry:
        """The car's state now: parked and plugged in until its departure, then away."""
        with self._lock:
            self._settle()
            now = self._since
            energy_kwh = self.energy_kwh
        assert now is not None
        parked = now < self.departure
        return Telemetry(
            vehicle_id=self.vehicle_id,
            event_time=now,
            site_id=self.site_id if parked else None,
            plugged_in=parked,
            energy_kwh=round(energy_kwh, 9),
            battery_kwh=self.battery_kwh,
            reserve_kwh=self.reserve_kwh,
            target_kwh=self.target_kwh,
            expected_departure=self.departure if parked else None,
            charger_kw=self.charger_kw,
            charge_efficiency_frac=self.charge_efficiency_frac,
            compute_kw=self.compute_kw,
        )
