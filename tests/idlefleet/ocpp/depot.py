"""A depot wired as `serve` wires it: the real planner service on the embedded broker, the
central system on its own loop thread with its adapter, and the fleet's records signed by
enrolled identities. Stations are the harness's (the `ocpp` library's charge-point side).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from idlefleet.ocpp.central import CentralConfig
from idlefleet.ocpp.compliance import ComplianceRule
from idlefleet.ocpp.profiles import EvseLimits
from idlefleet.ocpp.runner import OcppConfig, RunningOcpp, running_ocpp
from idlefleet.ocpp.station import StationConfig
from idlefleet.service.planner import PlannerService
from idlefleet.settings import OcppSettings, PlannerSettings
from idlefleet.sites import SiteConfig
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.messages import MeasuredState, Message, OwnerPreferences, VehicleRecord
from streams.topics import Stream
from tests.idlefleet.ocpp.harness import AC11, PASSWORD
from tests.streams import factories

SITE = "depot-a"
GRID_LIMIT_KW = 30.0
SITES = [
    SiteConfig(
        site_id=SITE,
        region="DE",
        timezone="Europe/Berlin",
        latitude_deg=52.5,
        longitude_deg=13.4,
        grid_limit_kw=GRID_LIMIT_KW,
    )
]
SLOT = timedelta(minutes=15)
WAIT_S = 30.0  # generous: other tests share the machine


def slot_now() -> datetime:
    """The start of the 15-minute slot holding now (UTC)."""
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def station(limits: EvseLimits = AC11, station_kw: float | None = None) -> StationConfig:
    """A station at the depot with the harness's password."""
    whole = None if station_kw is None else EvseLimits(station_kw, unit=limits.unit)
    return StationConfig(SecretStr(PASSWORD), evse=limits, station=whole, site_id=SITE)


def car(vehicle_id: str, **fields: Any) -> VehicleRecord:
    """A 60 kWh car with an 11 kW charger in the registry, updated now."""
    values: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "updated_at": datetime.now(UTC),
        "battery_kwh": 60.0,
        "charger_kw": 11.0,
        "compute_kw": 0.3,
        "home_site_id": SITE,
        **fields,
    }
    return VehicleRecord(**values)


def wishes(vehicle_id: str, target_kwh: float, departure: datetime) -> OwnerPreferences:
    return OwnerPreferences(
        vehicle_id=vehicle_id,
        updated_at=datetime.now(UTC),
        target_kwh=target_kwh,
        expected_departure=departure,
        participating=False,
    )


class Seen:
    """Every measured state on the topic, read by a replica that checks each writer's proof
    as the service does."""

    def __init__(self, kafka: KafkaSettings, world: factories.World) -> None:
        self.states: list[MeasuredState] = []
        self._lock = threading.Lock()
        rules = world.trust("planner").start().rules()
        self._reader = StreamReader(
            kafka, None, [Stream.MEASURED_STATE], self._keep, None, rules=rules
        ).start()

    def _keep(self, stream: Stream, message: Message) -> None:
        assert isinstance(message, MeasuredState)
        with self._lock:
            self.states.append(message)

    def of(self, vehicle_id: str) -> list[MeasuredState]:
        with self._lock:
            return [s for s in self.states if s.vehicle_id == vehicle_id]

    def stop(self) -> None:
        self._reader.stop()


async def until(condition: Callable[[], Any], within_s: float = WAIT_S) -> Any:
    """Wait until `condition()` is truthy and return it; fail after `within_s` [s]."""
    deadline = time.monotonic() + within_s
    while not (found := condition()):
        if time.monotonic() > deadline:
            code = condition.__code__
            raise AssertionError(
                f"not met within {within_s:g} s: {Path(code.co_filename).name}:"
                f"{code.co_firstlineno}"
            )
        await asyncio.sleep(0.05)
    return found


@dataclass
class Depot:
    """The service, the central system with its adapter, the measured states on the topic."""

    kafka: KafkaSettings
    world: factories.World
    service: PlannerService
    ocpp: RunningOcpp
    seen: Seen
    #: The slot the intensity signal starts at: where the tests' plans start.
    slot_start: datetime

    @property
    def port(self) -> int:
        return self.ocpp.port

    def publish(self, messages: list[Message], principal: str) -> None:
        self.world.publish(messages, principal)

    async def tick(self) -> None:
        """The service's tick at `slot_start`, off this loop (stations keep answering)."""
        assert await asyncio.to_thread(self.service.catch_up, WAIT_S)
        await asyncio.to_thread(self.service.tick, self.slot_start)


@contextmanager
def running_depot(
    kafka: KafkaSettings,
    stations: dict[str, StationConfig],
    *,
    horizon_hours: float = 2.0,
) -> Iterator[Depot]:
    """The depot with `stations`, the intensity for now and the next three hours published
    (the first half hour dirty)."""
    world = factories.World(kafka, {"planner": "service", "ocpp": "adapter"})
    start = slot_now()
    intensity = [600.0, 600.0] + [100.0, 300.0] * 6
    world.publish([factories.grid_signal(intensity, start=start)], "feeds")
    settings = PlannerSettings(
        group_id=f"planner-{kafka.topic_prefix}",
        horizon_hours=horizon_hours,
        solver_time_limit_s=10,
    )
    service = PlannerService(kafka, settings, SITES, trust=world.trust("planner")).start()
    # joined its group before anything can stop it (kafka-python 3 leaves a socket open when
    # a consumer closes while still joining)
    assert service.catch_up(WAIT_S)
    config = OcppConfig(
        host="127.0.0.1",
        port=0,
        central=CentralConfig(
            stations, rule=ComplianceRule(samples=3), heartbeat_s=60, response_timeout_s=5
        ),
        settings=OcppSettings(poll_s=0.1),
        stations_file=Path("stations"),
    )
    seen = Seen(kafka, world)
    try:
        with running_ocpp(config, service, kafka, world.trust("ocpp").start()) as ocpp:
            assert ocpp is not None
            yield Depot(kafka, world, service, ocpp, seen, start)
    finally:
        seen.stop()
        service.stop()
        world.stop()
