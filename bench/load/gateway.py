"""The cars' side of the telemetry: batteries following the dispatched charge power, and what
each car reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bench.load.schedule import ORIGIN, SLOT
from idlefleet.sim.fleet import SimulatedCar
from streams.messages import Assignment, Message, Telemetry
from streams.topics import Stream


class Gateway:
    """The cars' side: batteries follow the charge power [kW] of their assignments and move
    slot by slot; reports carry the energy reached within the slot."""

    def __init__(self, fleet: Sequence[SimulatedCar]) -> None:
        self.cars = {car.vehicle_id: car for car in fleet}
        self.refused = 0  # set points for a car not parked the whole slot
        self._slot_start = ORIGIN - SLOT

    def on_assignment(self, stream: Stream, message: Message) -> None:
        assert isinstance(message, Assignment)
        car = self.cars.get(message.vehicle_id)
        if car is None:
            return
        try:
            car.set_charge_power_kw(message.slot_start, message.slot_end, message.charge_power_kw)
        except ValueError:
            self.refused += 1
            return
        if message.work:
            car.compute_slots.add(message.slot_start)

    def report(self, car: SimulatedCar, now: datetime) -> Telemetry:
        """What `car` reports at `now`, parked or away."""
        self._move_to(now)
        if car.is_parked(self._slot_start, self._slot_start + SLOT):
            return car.report(now, car.energy_at(self._slot_start, now))
        return car.report(now)

    def _move_to(self, now: datetime) -> None:
        """Move every battery through the slots that ended by `now`."""
        while now >= self._slot_start + SLOT:
            end = self._slot_start + SLOT
            for car in self.cars.values():
                car.advance(self._slot_start, end)
            self._slot_start = end
