"""A simulated OCPP 2.0.1 charging station with one EVSE, whose car charges as its profiles say.

The station is the `ocpp` library's charge-point side over a real WebSocket: it boots, starts
and ends a transaction when its car plugs in and leaves, and sends meter values (the energy
register, the power, and the car's SoC only if the car tells its charger, as few AC cars do).
It keeps every charging profile the central system sets and draws, at any moment, the least
of its car's charger, the transaction's profile (else the default one) and the station-wide
limit, as a real station does (OCPP 2.0.1 K01, the smallest limit of the purposes wins).
A station told to `ignore_profiles` accepts them and goes on at full power: the charger that
says "Accepted" and does not apply it.
"""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result

from idlefleet.sim.fleet import SimulatedCar

#: Phase-to-neutral voltage the station's amperes are counted at [V].
VOLTAGE_V = 230.0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class ReceivedProfile:
    """A charging profile as the station keeps it: periods of limits in W or A per phase."""

    purpose: str
    start: datetime | None  # absolute start; None: from the transaction's start
    duration_s: float | None
    unit: str
    periods: tuple[tuple[float, float, int], ...]  # (start [s], limit, phases)
    transaction_id: str | None

    @classmethod
    def from_payload(cls, profile: dict[str, Any]) -> ReceivedProfile:
        """The station's reading of a SetChargingProfile's `charging_profile`."""
        schedule = profile["charging_schedule"][0]
        start = schedule.get("start_schedule")
        return cls(
            purpose=profile["charging_profile_purpose"],
            start=_parse(start) if start else None,
            duration_s=schedule.get("duration"),
            unit=schedule["charging_rate_unit"],
            periods=tuple(
                (p["start_period"], float(p["limit"]), int(p.get("number_phases") or 3))
                for p in schedule["charging_schedule_period"]
            ),
            transaction_id=profile.get("transaction_id"),
        )

    def limit_kw(self, at: datetime, session_start: datetime | None) -> float | None:
        """The power limit in force at `at` [kW]; None when the profile says nothing then."""
        origin = self.start or session_start
        if origin is None:
            return None
        offset_s = (at - origin).total_seconds()
        if offset_s < 0 or (self.duration_s is not None and offset_s >= self.duration_s):
            return None
        in_force = [p for p in self.periods if p[0] <= offset_s]
        if not in_force:
            return None
        _, limit, phases = in_force[-1]
        return limit * phases * VOLTAGE_V / 1000.0 if self.unit == "A" else limit / 1000.0


class SimulatedStation(ChargePoint):
    """One station, one EVSE (id 1), one car; see the module's docstring."""

    def __init__(
        self,
        station_id: str,
        connection: Any,
        car: SimulatedCar,
        id_token: str,
        *,
        reports_soc: bool = False,
        ignore_profiles: bool = False,
    ) -> None:
        super().__init__(station_id, connection, response_timeout=30)
        self.car = car
        self.id_token = id_token
        self.reports_soc = reports_soc
        self.ignore_profiles = ignore_profiles
        self.profiles: dict[str, ReceivedProfile] = {}
        self.profiles_received = 0
        self.register_kwh = 0.0  # the meter's lifetime energy register [kWh]
        self.transaction_id: str | None = None
        self.session_start: datetime | None = None
        self.session_start_kwh = 0.0
        self._seq = itertools.count()
        self._sessions = itertools.count(1)

    @on("SetChargingProfile")
    def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        del evse_id  # one EVSE; 0 (the station) and 1 are the same here
        profile = ReceivedProfile.from_payload(charging_profile)
        self.profiles[profile.purpose] = profile
        self.profiles_received += 1
        return call_result.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **_: Any) -> Any:
        self.profiles.pop("TxProfile", None)
        return call_result.ClearChargingProfile(status="Accepted")

    # -- what the station draws ---------------------------------------------------------
    def power_kw(self, at: datetime) -> float:
        """Grid power into the car at `at` [kW]: 0 without a session."""
        if self.transaction_id is None:
            return 0.0
        power = self.car.charger_kw
        if self.ignore_profiles:
            return power
        tx = self.profiles.get("TxProfile")
        tx_kw = tx.limit_kw(at, self.session_start) if tx else None
        if tx is not None and tx.transaction_id not in (None, self.transaction_id):
            tx_kw = None  # a profile of an earlier session
        default = self.profiles.get("TxDefaultProfile")
        default_kw = default.limit_kw(at, self.session_start) if default else None
        for limit in (tx_kw if tx_kw is not None else default_kw, self._station_max_kw(at)):
            if limit is not None:
                power = min(power, limit)
        return max(0.0, power)

    def _station_max_kw(self, at: datetime) -> float | None:
        cap = self.profiles.get("ChargingStationMaxProfile")
        return cap.limit_kw(at, self.session_start) if cap else None

    def meter(self, power_kw: float, hours: float) -> None:
        """Count `power_kw` [kW] held for `hours` [h] on the register."""
        self.register_kwh += power_kw * hours

    @property
    def session_energy_kwh(self) -> float:
        """Energy metered in the running session [kWh]."""
        return self.register_kwh - self.session_start_kwh if self.transaction_id else 0.0

    # -- what the station says ----------------------------------------------------------
    async def boot(self, at: datetime) -> None:
        """Boot at `at`: BootNotification, then the connector's status."""
        await self.call(
            call.BootNotification(
                charging_station={"model": "SimWallbox", "vendor_name": "idlefleet-sim"},
                reason="PowerUp",
            )
        )
        await self.call(
            call.StatusNotification(
                timestamp=_iso(at),
                connector_status="Available",
                evse_id=1,
                connector_id=1,
            )
        )

    async def plug_in(self, at: datetime) -> None:
        """The car arrives: a transaction starts, with the car's token and a meter value."""
        self.transaction_id = f"{self.id}-tx{next(self._sessions)}"
        self.session_start, self.session_start_kwh = at, self.register_kwh
        await self.call(
            call.TransactionEvent(
                event_type="Started",
                timestamp=_iso(at),
                trigger_reason="CablePluggedIn",
                seq_no=next(self._seq),
                transaction_info={"transaction_id": self.transaction_id},
                evse={"id": 1, "connector_id": 1},
                id_token={"id_token": self.id_token, "type": "ISO14443"},
                meter_value=[self._meter_value(at, 0.0)],
            )
        )

    async def report(self, at: datetime, power_kw: float) -> None:
        """A meter value at `at` while `power_kw` [kW] flows."""
        if self.transaction_id is None:
            return
        await self.call(call.MeterValues(evse_id=1, meter_value=[self._meter_value(at, power_kw)]))

    async def unplug(self, at: datetime) -> None:
        """The car leaves: the transaction ends with the final register."""
        if self.transaction_id is None:
            return
        await self.call(
            call.TransactionEvent(
                event_type="Ended",
                timestamp=_iso(at),
                trigger_reason="EVCommunicationLost",
                seq_no=next(self._seq),
                transaction_info={
                    "transaction_id": self.transaction_id,
                    "stopped_reason": "EVDisconnected",
                },
                evse={"id": 1, "connector_id": 1},
                meter_value=[self._meter_value(at, 0.0)],
            )
        )
        self.transaction_id, self.session_start = None, None

    async def close(self) -> None:
        """Close the station's WebSocket."""
        await self._connection.close()

    def _meter_value(self, at: datetime, power_kw: float) -> dict[str, Any]:
        sampled: list[dict[str, Any]] = [
            {
                "value": round(self.register_kwh * 1000.0, 1),
                "measurand": "Energy.Active.Import.Register",
                "unit_of_measure": {"unit": "Wh"},
            },
            {
                "value": round(power_kw * 1000.0, 1),
                "measurand": "Power.Active.Import",
                "unit_of_measure": {"unit": "W"},
            },
        ]
        if self.reports_soc:
            soc_pct = 100.0 * self.car.energy_kwh / self.car.battery_kwh
            sampled.append(
                {
                    "value": round(soc_pct, 1),
                    "measurand": "SoC",
                    "unit_of_measure": {"unit": "Percent"},
                }
            )
        return {"timestamp": _iso(at), "sampled_value": sampled}


async def connect(url: str, station_id: str, password: str) -> Any:
    """An OCPP 2.0.1 WebSocket to `url`/`station_id`, with HTTP Basic credentials (security
    profile 1; a `wss://` URL adds TLS, profile 2)."""
    auth = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return await websockets.connect(
        f"{url.rstrip('/')}/{station_id}",
        subprotocols=[websockets.Subprotocol("ocpp2.0.1")],
        additional_headers={"Authorization": f"Basic {auth}"},
        open_timeout=30,
    )
