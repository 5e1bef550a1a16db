"""`demo --ocpp`: every simulated car charges at an OCPP 2.0.1 station of its own.

The stations (`idlefleet.sim.station`, the `ocpp` library's charge-point side) connect over
real WebSockets on loopback to the central system that `serve --ocpp-port` runs
(`idlefleet.ocpp.runner`), with a stations file written for the run. A car's battery follows
what its station draws, which is what the profiles it received allow, not what its agent is
told: the real path from plan to charger. Cars' three sources arrive apart: the registry
entry (with the car's RFID token) once, the owner's preferences when the car parks, the
car's own reading when it parks and every hour, and its station's meter every slot; every
other station reports the car's SoC, the rest never do, so the planner estimates their
energy from metered energy. The summary compares the energy each car was dispatched with the
energy its station metered.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import websockets

from idlefleet.ocpp.runner import OcppConfig, RunningOcpp, central_config, running_ocpp
from idlefleet.ocpp.stations_file import load_stations
from idlefleet.service.planner import PlannerService
from idlefleet.settings import OcppSettings
from idlefleet.sim.fleet import SimulatedCar
from idlefleet.sim.station import SimulatedStation, connect
from streams.clients import KafkaSettings
from streams.messages import Assignment
from streams.producer import Publisher
from streams.topics import Stream
from streams.trust import Trust

T = TypeVar("T")

#: How often a parked car reports its own reading (its app, its maker's stream) [slots].
READING_EVERY_SLOTS = 4
#: How often the adapter looks for a new plan [s]: the demo's slots take about a second.
POLL_S = 0.02
#: The least power the stations' cars charge at [kW] (IEC 61851: 6 A, three phases, 230 V).
MIN_POWER_KW = 6.0 * 3 * 230.0 / 1000.0
#: A slot's closing meter sample is taken this long before the next slot starts, so that it
#: is judged against the limit in force while its power flowed.
SAMPLE_LEAD = timedelta(seconds=1)
#: How finely the stations' profiles are followed within a slot.
DRAW_STEP = timedelta(seconds=10)
#: The stations' password in the run's stations file (loopback, one run).
PASSWORD_PREFIX = "demo-station-"


@dataclass(frozen=True)
class ChargerOutcome:
    """What one car was dispatched and what its station metered [kWh]."""

    vehicle_id: str
    station_id: str
    reports_soc: bool
    dispatched_kwh: float
    metered_kwh: float
    #: Slots dispatched above 0 but below the station's least current [count].
    short_slots: int


@dataclass(frozen=True)
class OcppSummary:
    """The OCPP part of the demo's summary."""

    stations: int
    profiles_received: int
    measured_states: int
    dead_letters: int
    chargers: list[ChargerOutcome]

    @property
    def dispatched_kwh(self) -> float:
        return sum(c.dispatched_kwh for c in self.chargers)

    @property
    def metered_kwh(self) -> float:
        return sum(c.metered_kwh for c in self.chargers)

    def lines(self) -> list[str]:
        worst = max(self.chargers, key=lambda c: abs(c.metered_kwh - c.dispatched_kwh))
        return [
            f"OCPP: {self.stations} stations (2.0.1 over WebSockets), "
            f"{self.profiles_received} charging profiles received, "
            f"{self.measured_states} measured states published, "
            f"{self.dead_letters} dead letters",
            f"  energy dispatched {self.dispatched_kwh:.1f} kWh, metered "
            f"{self.metered_kwh:.1f} kWh; largest difference {worst.vehicle_id} "
            f"({worst.dispatched_kwh:.1f} dispatched, {worst.metered_kwh:.1f} metered)",
            f"  {sum(c.short_slots for c in self.chargers)} slots were dispatched below a "
            f"station's least current ({MIN_POWER_KW:.2f} kW, 6 A on three phases): carried "
            f"out at it for part of the slot where the site had room",
            f"  {sum(c.reports_soc for c in self.chargers)} stations report the car's SoC, "
            f"the others' energy is estimated from metered energy",
        ]


@dataclass
class _Charger:
    car: SimulatedCar
    station: SimulatedStation
    plugged: bool = False
    power_kw: float = 0.0  # mean over the slot [kW]
    end_kw: float = 0.0  # as the slot ends [kW]
    dispatched: dict[datetime, tuple[int, float]] = field(default_factory=dict)


class OcppWorld:
    """The simulated chargers of one demo run (see the module's docstring)."""

    def __init__(self, fleet: list[SimulatedCar], slot: timedelta) -> None:
        self._fleet = fleet
        self._slot = slot
        self._chargers: dict[str, _Charger] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="demo-stations", daemon=True
        )
        self._running: RunningOcpp | None = None

    @contextmanager
    def running(
        self,
        service: PlannerService,
        kafka: KafkaSettings,
        adapter_trust: Trust,
        out_dir: Path,
        start: datetime,
    ) -> Iterator[OcppWorld]:
        """The central system in the service's place and every car's station connected."""
        stations_file = _write_stations_file(out_dir / "ocpp-stations.txt", self._fleet)
        site_ids = {car.site.site_id for car in self._fleet}
        settings = OcppSettings(host="127.0.0.1", poll_s=POLL_S)
        config = OcppConfig(
            host=settings.host,
            port=0,
            central=central_config(load_stations(stations_file, site_ids), settings),
            settings=settings,
            stations_file=stations_file,
        )
        with running_ocpp(config, service, kafka, adapter_trust) as running:
            assert running is not None
            self._running = running
            self._thread.start()
            try:
                url = f"ws://127.0.0.1:{running.port}/ocpp"
                for number, car in enumerate(self._fleet):
                    self._chargers[car.vehicle_id] = _Charger(
                        car, self._run(self._connect(url, car, number % 2 == 0, start))
                    )
                yield self
            finally:
                for charger in self._chargers.values():
                    self._run(charger.station.close())
                self._run(_wind_down())
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
                self._loop.close()

    async def _connect(
        self, url: str, car: SimulatedCar, reports_soc: bool, start: datetime
    ) -> SimulatedStation:
        station_id = _station_id(car)
        connection = await connect(url, station_id, PASSWORD_PREFIX + station_id)
        station = SimulatedStation(
            station_id, connection, car, car.id_token, reports_soc=reports_soc
        )
        asyncio.get_running_loop().create_task(_listen(station))
        await station.boot(start)
        return station

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=60)

    # -- each slot ------------------------------------------------------------------------
    def publish_registry(self, publisher: Publisher, at: datetime) -> None:
        """Every car's fleet registry entry (an admin's `vehicles register`), before the
        central system starts (its adapter reads the registry to the end first), through
        `publisher` (a service's), which is closed then."""
        for car in self._fleet:
            evse = f"{_station_id(car)}/1"
            publisher.publish(Stream.FLEET_REGISTRY, car.registry_record(at, evse))
        publisher.flush()
        publisher.close()

    def before_plan(self, now: datetime, slot: int, publisher: Publisher) -> None:
        """Cars arrive and leave (sessions start and end), and every station meters."""
        for charger in self._chargers.values():
            car, station = charger.car, charger.station
            parked = car.arrival <= now < car.departure
            if parked and not charger.plugged:
                publisher.publish(Stream.OWNER_PREFERENCES, car.owner_preferences(now))
                publisher.publish(Stream.MEASURED_STATE, car.reading(now))
                self._run(station.plug_in(now))
                charger.plugged = True
            elif not parked and charger.plugged:
                self._run(station.unplug(now))
                publisher.publish(Stream.MEASURED_STATE, car.reading(now))
                charger.plugged = False
            elif parked:  # the sample that ends the last slot: its power and register
                self._run(station.report(now - SAMPLE_LEAD, charger.end_kw))
                if slot % READING_EVERY_SLOTS == 0:
                    publisher.publish(Stream.MEASURED_STATE, car.reading(now))

    def settle(self, timeout_s: float = 60.0) -> bool:
        """Every measurement bridged and the newest plan's profiles at every station."""
        assert self._running is not None
        return self._running.adapter.wait_settled(timeout_s)

    def dispatched(self, assignment: Assignment) -> None:
        """What the service told the car's agent to draw (the newest plan's, per slot)."""
        charger = self._chargers.get(assignment.vehicle_id)
        if charger is None:
            return
        known = charger.dispatched.get(assignment.slot_start)
        if known is None or assignment.plan_revision >= known[0]:
            charger.dispatched[assignment.slot_start] = (
                assignment.plan_revision,
                assignment.charge_power_kw,
            )

    def draw(self, now: datetime) -> None:
        """Each plugged car charges over the slot at what its station allows now."""
        hours = self._slot / timedelta(hours=1)
        steps = [now + (i + 0.5) * DRAW_STEP for i in range(round(self._slot / DRAW_STEP))]
        for charger in self._chargers.values():
            if not charger.plugged:
                charger.power_kw = charger.end_kw = 0.0
                continue
            # The profile may change within the slot (a least power for part of it): the car
            # takes the mean; a full battery draws no more, whatever the station allows.
            mean_kw = sum(charger.station.power_kw(t) for t in steps) / len(steps)
            room_kw = charger.car.room_kw(hours)
            charger.power_kw = min(mean_kw, room_kw)
            charger.end_kw = min(charger.station.power_kw(now + self._slot - SAMPLE_LEAD), room_kw)
            charger.car.set_charge_power_kw(now, now + self._slot, charger.power_kw)

    def after_slot(self) -> None:
        """Each station meters the slot's energy."""
        hours = self._slot / timedelta(hours=1)
        for charger in self._chargers.values():
            charger.station.meter(charger.power_kw, hours)

    def summary(self) -> OcppSummary:
        assert self._running is not None
        hours = self._slot / timedelta(hours=1)
        adapter = self._running.adapter
        return OcppSummary(
            stations=len(self._chargers),
            profiles_received=sum(c.station.profiles_received for c in self._chargers.values()),
            measured_states=adapter.published,
            dead_letters=adapter.dead_lettered,
            chargers=[
                ChargerOutcome(
                    vehicle_id=vehicle_id,
                    station_id=c.station.id,
                    reports_soc=c.station.reports_soc,
                    dispatched_kwh=round(sum(p for _, p in c.dispatched.values()) * hours, 3),
                    metered_kwh=round(c.station.register_kwh, 3),
                    short_slots=sum(0 < p < MIN_POWER_KW for _, p in c.dispatched.values()),
                )
                for vehicle_id, c in sorted(self._chargers.items())
            ],
        )


async def _wind_down() -> None:
    """Cancel what still runs on the stations' loop (their listeners), as `asyncio.run` does."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _listen(station: SimulatedStation) -> None:
    """Answer the central system until the station's WebSocket closes."""
    with contextlib.suppress(websockets.ConnectionClosed):
        await station.start()


def _station_id(car: SimulatedCar) -> str:
    return f"CS-{car.vehicle_id}"


def _write_stations_file(path: Path, fleet: list[SimulatedCar]) -> Path:
    """The run's stations file: one three-phase station per car at its site, as strong as
    the car's charger, whose profiles are in watts (no rounding to 0.1 A)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{_station_id(car)} {car.site.site_id} plain:{PASSWORD_PREFIX}{_station_id(car)} "
        f"evse_kw={car.charger_kw:g} unit=W"
        for car in fleet
    ]
    path.write_text("# demo --ocpp: one station per simulated car\n" + "\n".join(lines) + "\n")
    path.chmod(0o600)
    return path
