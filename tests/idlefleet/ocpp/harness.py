"""Real OCPP stations (the `ocpp` library's charge-point side) against a real central system.

`Station201` and `Station16` speak to the central system over a real WebSocket on loopback;
they remember every SetChargingProfile they receive and answer it Accepted, or Rejected when
told to. `running_central` starts a `CentralSystem` on a free port.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from pydantic import SecretStr

from idlefleet.ocpp.central import CentralConfig, CentralSystem
from idlefleet.ocpp.compliance import ComplianceRule
from idlefleet.ocpp.meters import MeterSample
from idlefleet.ocpp.profiles import EvseLimits, RateUnit, SlotPower
from idlefleet.ocpp.station import EvseRef, StationConfig

PASSWORD = "s3cret-station-password"
SLOT = timedelta(minutes=15)
AC11 = EvseLimits(max_power_kw=11.0, phases=3, voltage_v=230.0, unit=RateUnit.A)
AC22_W = EvseLimits(max_power_kw=22.0, phases=3, unit=RateUnit.W)


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def slot_start() -> datetime:
    now = datetime.now(UTC)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def plan(*powers_kw: float) -> list[SlotPower]:
    """Slots from the current one on, one per power [kW]."""
    start = slot_start()
    return [SlotPower(start + i * SLOT, start + (i + 1) * SLOT, p) for i, p in enumerate(powers_kw)]


def config(station_ids: list[str], limits: EvseLimits = AC11) -> CentralConfig:
    stations = {sid: StationConfig(SecretStr(PASSWORD), evse=limits) for sid in station_ids}
    return CentralConfig(
        stations, rule=ComplianceRule(samples=3), heartbeat_s=60, response_timeout_s=5
    )


@dataclass
class Measurements:
    """Collects `on_measurement` callbacks."""

    seen: list[tuple[str, int, MeterSample]] = field(default_factory=list)

    def __call__(self, station_id: str, evse_id: int, sample: MeterSample) -> None:
        self.seen.append((station_id, evse_id, sample))


@asynccontextmanager
async def running_central(
    cfg: CentralConfig,
) -> AsyncIterator[tuple[CentralSystem, int, Measurements]]:
    measurements = Measurements()
    central = CentralSystem(cfg, on_measurement=measurements)
    port = await central.start()
    try:
        yield central, port, measurements
    finally:
        await central.stop()


async def until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """Wait until `condition()` holds; fail after `within_s` [s]."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for `localhost` and its key, as PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Station201(ChargePoint201):
    """An OCPP 2.0.1 charging station with one EVSE."""

    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self.profiles: list[tuple[int, dict[str, Any]]] = []
        self.reject = False

    @on("SetChargingProfile")
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        self.profiles.append((evse_id, charging_profile))
        return result201.SetChargingProfile(status="Rejected" if self.reject else "Accepted")

    def purposes(self) -> list[str]:
        return [p["charging_profile_purpose"] for _, p in self.profiles]

    def last(self, purpose: str) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
        evse, profile = [x for x in self.profiles if x[1]["charging_profile_purpose"] == purpose][
            -1
        ]
        schedule = profile["charging_schedule"][0]
        return evse, profile, schedule["charging_schedule_period"]

    async def boot(self) -> None:
        await self.call(
            call201.BootNotification(
                charging_station={"model": "Wallbox", "vendor_name": "Test"}, reason="PowerUp"
            )
        )

    async def start_session(self, transaction_id: str, soc_pct: float, power_w: float) -> None:
        await self.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=now_iso(),
                trigger_reason="CablePluggedIn",
                seq_no=0,
                transaction_info={"transaction_id": transaction_id},
                evse={"id": 1, "connector_id": 1},
                id_token={"id_token": "EVCCID-0A1B2C", "type": "MacAddress"},
                meter_value=[meter_201(soc_pct, power_w)],
            )
        )

    async def meter(self, soc_pct: float, power_w: float) -> None:
        await self.call(call201.MeterValues(evse_id=1, meter_value=[meter_201(soc_pct, power_w)]))


def meter_201(soc_pct: float, power_w: float) -> dict[str, Any]:
    return {
        "timestamp": now_iso(),
        "sampled_value": [
            {"value": soc_pct, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}},
            {
                "value": power_w,
                "measurand": "Power.Active.Import",
                "unit_of_measure": {"unit": "W"},
            },
            {
                "value": 12.5,
                "measurand": "Energy.Active.Import.Register",
                "unit_of_measure": {"unit": "kWh"},
            },
        ],
    }


class Station16(ChargePoint16):
    """An OCPP 1.6J charge point with one connector."""

    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection, response_timeout=5)
        self.profiles: list[tuple[int, dict[str, Any]]] = []
        self.reject = False
        self.transaction_id: int | None = None

    @on("SetChargingProfile")
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any]
    ) -> Any:
        self.profiles.append((connector_id, cs_charging_profiles))
        return result16.SetChargingProfile(status="Rejected" if self.reject else "Accepted")

    def purposes(self) -> list[str]:
        return [p["charging_profile_purpose"] for _, p in self.profiles]

    def last(self, purpose: str) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
        evse, profile = [x for x in self.profiles if x[1]["charging_profile_purpose"] == purpose][
            -1
        ]
        return evse, profile, profile["charging_schedule"]["charging_schedule_period"]

    async def boot(self) -> None:
        await self.call(
            call16.BootNotification(charge_point_model="Wallbox", charge_point_vendor="T")
        )

    async def start_session(self, transaction_id: str, soc_pct: float, power_w: float) -> None:
        del transaction_id  # 1.6: the central system chooses it
        result = await self.call(
            call16.StartTransaction(
                connector_id=1, id_tag="EVCCID-0A1B2C", meter_start=0, timestamp=now_iso()
            )
        )
        self.transaction_id = result.transaction_id
        await self.meter(soc_pct, power_w)

    async def meter(self, soc_pct: float, power_w: float) -> None:
        sampled = [
            {"value": str(soc_pct), "measurand": "SoC", "unit": "Percent"},
            {"value": str(power_w), "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "12500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        ]
        await self.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=self.transaction_id,
                meter_value=[{"timestamp": now_iso(), "sampled_value": sampled}],
            )
        )


Station = Station201 | Station16
VERSIONS: dict[str, type[Station201] | type[Station16]] = {
    "ocpp2.0.1": Station201,
    "ocpp1.6": Station16,
}


@asynccontextmanager
async def connected(
    port: int,
    station_id: str,
    protocol: str,
    password: str = PASSWORD,
    station: Station | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Station]:
    """A station connected until the block ends (then its WebSocket closes: a drop).

    Pass `station` to reconnect the same station object (its state kept) on a new socket.
    """
    async with websockets.connect(
        f"{'wss' if tls else 'ws'}://localhost:{port}/ocpp/{station_id}",
        subprotocols=[websockets.Subprotocol(protocol)],
        additional_headers={"Authorization": basic(station_id, password)},
        ssl=tls,
    ) as ws:
        if station is None:
            station = VERSIONS[protocol](station_id, ws)
        else:
            station._connection = ws
        task = asyncio.create_task(station.start())
        try:
            yield station
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


__all__ = ["AC11", "AC22_W", "EvseRef", "Measurements", "connected", "plan", "until"]
