"""The simulated station against the real central system: it follows (or ignores) the
profiles it is sent, and meters what it draws."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from idlefleet.ocpp.profiles import SlotPower
from idlefleet.ocpp.station import EvseRef
from idlefleet.sim.catalog import demo_sites
from idlefleet.sim.fleet import SimulatedCar
from idlefleet.sim.station import SimulatedStation, connect
from tests.idlefleet.ocpp.harness import PASSWORD, config, running_central, until

SLOT = timedelta(minutes=15)


def a_car() -> SimulatedCar:
    now = datetime.now(UTC)
    return SimulatedCar(
        vehicle_id="car-1",
        site=demo_sites(1, 1)[0],
        arrival=now - timedelta(hours=1),
        departure=now + timedelta(hours=8),
        battery_kwh=60.0,
        arrival_energy_kwh=30.0,
        reserve_kwh=10.0,
        target_kwh=50.0,
        participating=True,
    )


def slot_start() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


async def a_session(ignore_profiles: bool) -> list[float]:
    """Powers the station draws [kW]: at boot, after a plan of 7 kW, under a 2 kW cap."""
    async with running_central(config(["CS-1"])) as (central, port, measurements):
        ws = await connect(f"ws://127.0.0.1:{port}/ocpp", "CS-1", PASSWORD)
        station = SimulatedStation(
            "CS-1", ws, a_car(), "TOKEN-1", reports_soc=True, ignore_profiles=ignore_profiles
        )
        task = asyncio.create_task(station.start())
        try:
            await station.boot(datetime.now(UTC))
            await until(lambda: "TxDefaultProfile" in station.profiles)
            now = datetime.now(UTC)
            await station.plug_in(now)
            powers = [station.power_kw(now)]
            start = slot_start()
            plan = [SlotPower(start + i * SLOT, start + (i + 1) * SLOT, 7.0) for i in range(4)]
            sent = await central.apply_plan({EvseRef("CS-1", 1): plan})
            assert sent == {EvseRef("CS-1", 1): True}
            powers.append(station.power_kw(datetime.now(UTC)))
            await central.apply_cap({"CS-1": 2.0}, start, start + 4 * SLOT)
            powers.append(station.power_kw(datetime.now(UTC)))
            station.meter(powers[-1], 0.25)
            await station.report(datetime.now(UTC), powers[-1])
            await until(lambda: len(measurements.seen) >= 2)
            _, _, sample = measurements.seen[-1]
            assert sample.energy_wh is not None
            assert abs(sample.energy_wh - station.register_kwh * 1000.0) < 1.0
            assert sample.soc_pct == 50.0
            await station.unplug(datetime.now(UTC))
            assert station.power_kw(datetime.now(UTC)) == 0.0
            return powers
        finally:
            task.cancel()
            await ws.close()


def test_the_station_follows_default_plan_and_cap() -> None:
    powers = asyncio.run(a_session(ignore_profiles=False))
    assert 10.9 <= powers[0] <= 11.0  # the boot default: full power (in whole 0.1 A)
    assert 6.9 <= powers[1] <= 7.0  # the plan, rounded down to whole 0.1 A
    assert powers[2] <= 2.0  # the station-wide cap


def test_a_station_that_ignores_its_profiles_draws_full_power() -> None:
    assert asyncio.run(a_session(ignore_profiles=True)) == [11.0, 11.0, 11.0]
