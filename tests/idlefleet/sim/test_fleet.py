"""The simulated fleet: real sessions that fit the horizon, batteries that follow commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.fleet import SimulatedCar, generate_fleet, load_sessions

START = datetime(2020, 6, 10, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def fleet(seed: int = 1, cars: int = 30) -> list[SimulatedCar]:
    return generate_fleet(cars, demo_sites(3, cars), START, 24, 15, np.random.default_rng(seed))


def test_the_shipped_sessions_are_the_954_caltech_sessions() -> None:
    sessions = load_sessions()
    assert len(sessions) == 954
    assert 8900 < sum(s.energy_kwh for s in sessions) < 8901


def test_every_car_fits_the_horizon_on_slot_boundaries() -> None:
    for car in fleet():
        assert car.arrival >= START and car.departure <= START + timedelta(hours=24)
        assert car.departure - car.arrival >= 2 * SLOT
        assert (car.arrival - START) % SLOT == timedelta(0)
        assert (car.departure - START) % SLOT == timedelta(0)
        assert 0 < car.arrival_energy_kwh <= car.target_kwh <= car.battery_kwh


def test_the_same_seed_gives_the_same_fleet() -> None:
    assert [(c.arrival, c.battery_kwh) for c in fleet(5)] == [
        (c.arrival, c.battery_kwh) for c in fleet(5)
    ]


def test_the_battery_follows_charge_and_compute() -> None:
    car = fleet()[0]
    slot_start = car.arrival
    car.set_charge_power_kw(slot_start, slot_start + SLOT, 11.0)
    car.compute_slots.add(slot_start)
    before = car.energy_kwh
    car.advance(slot_start, slot_start + SLOT)
    assert car.energy_kwh == pytest.approx(before + 0.92 * 11.0 * 0.25 - 0.3 * 0.25)


def test_the_charger_refuses_what_it_cannot_do() -> None:
    car = fleet()[0]
    with pytest.raises(ValueError, match="exceeds"):
        car.set_charge_power_kw(car.arrival, car.arrival + SLOT, 50.0)
    with pytest.raises(ValueError, match="not plugged in"):
        car.set_charge_power_kw(car.departure, car.departure + SLOT, 1.0)


def test_telemetry_reports_parked_then_departed_once() -> None:
    car = fleet()[0]
    assert car.telemetry(car.arrival - SLOT) is None
    parked = car.telemetry(car.arrival)
    assert parked is not None and parked.plugged_in and parked.expected_departure == car.departure
    departed = car.telemetry(car.departure)
    assert departed is not None and departed.site_id is None
    assert car.telemetry(car.departure + SLOT) is None
