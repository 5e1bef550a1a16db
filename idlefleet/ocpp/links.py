"""The two OCPP versions as `ocpp` ChargePoint classes that report to one `Events` sink.

Each handler turns a station's message into a call on `Events` (boot, session start and end,
meter samples) and answers it; `send_profile` sends a version-neutral `Schedule` as the
version's SetChargingProfile and says whether the station accepted it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import count
from typing import Any, Protocol

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16 import enums as en16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import enums as en201
from websockets.exceptions import ConnectionClosed

from idlefleet.ocpp.meters import MeterError, MeterSample, parse_time, samples_v16, samples_v201
from idlefleet.ocpp.profiles import Schedule, to_v16, to_v201

OCPP201 = "ocpp2.0.1"
OCPP16 = "ocpp1.6"


class Events(Protocol):
    """What the central system is told by a station's handler."""

    async def booted(self, station_id: str) -> None: ...

    def session_started(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: str,
        id_token: str | None,
        meter_start_wh: float | None,
        at: datetime | None = None,
    ) -> bool:
        """Record a session (before the station hears the answer); True if it is new. `at`
        is when the station says it started (None: not said)."""
        ...

    async def session_ready(self, station_id: str, evse_id: int) -> None:
        """A new session was answered: send it what it should have."""
        ...

    def session_ended(
        self, station_id: str, transaction_id: str, final: MeterSample | None = None
    ) -> None: ...

    def status(
        self, station_id: str, evse_id: int, status: str, at: datetime | None = None
    ) -> None: ...

    def measured(
        self,
        station_id: str,
        evse_id: int | None,
        transaction_id: str | None,
        samples: Sequence[MeterSample],
    ) -> None: ...

    def unreadable(
        self, station_id: str, evse_id: int | None, transaction_id: str | None, reason: str
    ) -> None:
        """A message about an EVSE that could not be read (answered, then reported)."""
        ...


def _read_samples(
    events: Events,
    station_id: str,
    evse_id: int | None,
    transaction_id: str | None,
    parse: Callable[[Sequence[Mapping[str, Any]]], list[MeterSample]],
    meter_values: Sequence[Mapping[str, Any]],
) -> list[MeterSample]:
    """The samples of `meter_values`; none, reported as unreadable, when they do not parse."""
    try:
        return parse(meter_values)
    except (MeterError, KeyError, TypeError, ValueError) as exc:
        reason = f"unreadable meter values: {exc}"
        events.unreadable(station_id, evse_id, transaction_id, reason)
        return []


def _station_time(timestamp: str | None) -> datetime | None:
    """When the station says something happened; None when it does not say, or not readably
    (the central system's clock is used then)."""
    if timestamp is None:
        return None
    try:
        return parse_time(timestamp)
    except MeterError:
        return None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Link(Protocol):
    """A connected station, whatever its version."""

    id: str

    async def start(self) -> None: ...

    async def send_profile(
        self, evse_id: int, schedule: Schedule, profile_id: int, transaction_id: str | None
    ) -> bool: ...


class Link201(ChargePoint201):
    """An OCPP 2.0.1 station."""

    def __init__(
        self, station_id: str, connection: Any, events: Events, heartbeat_s: int, timeout_s: float
    ) -> None:
        super().__init__(station_id, connection, response_timeout=timeout_s)
        self._events = events
        self._heartbeat_s = heartbeat_s
        self._ready: set[str] = set()  # new sessions to send their profile once answered

    async def send_profile(
        self, evse_id: int, schedule: Schedule, profile_id: int, transaction_id: str | None
    ) -> bool:
        """SetChargingProfile on `evse_id` (0: the whole station); True if accepted."""
        request = call201.SetChargingProfile(
            evse_id=evse_id, charging_profile=to_v201(schedule, profile_id, transaction_id)
        )
        response = await self.call(request)
        accepted = en201.ChargingProfileStatusEnumType.accepted
        return response is not None and response.status == accepted

    @on(en201.Action.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], reason: str, **_: Any) -> Any:
        return result201.BootNotification(
            current_time=_now(),
            interval=self._heartbeat_s,
            status=en201.RegistrationStatusEnumType.accepted,
        )

    @after(en201.Action.boot_notification)
    async def after_boot(self, **_: Any) -> None:
        await self._events.booted(self.id)

    @on(en201.Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result201.Heartbeat(current_time=_now())

    @on(en201.Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        return result201.Authorize(id_token_info={"status": "Accepted"})

    @on(en201.Action.status_notification)
    def on_status(
        self, evse_id: int, connector_status: str, timestamp: str | None = None, **_: Any
    ) -> Any:
        self._events.status(self.id, evse_id, connector_status, _station_time(timestamp))
        return result201.StatusNotification()

    @on(en201.Action.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        samples = _read_samples(self._events, self.id, evse_id, None, samples_v201, meter_value)
        self._events.measured(self.id, evse_id, None, samples)
        return result201.MeterValues()

    @on(en201.Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        transaction_info: dict[str, Any],
        timestamp: str | None = None,
        meter_value: list[dict[str, Any]] | None = None,
        evse: dict[str, Any] | None = None,
        id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        transaction_id = str(transaction_info["transaction_id"])
        evse_id = int(evse["id"]) if evse else None
        token = id_token.get("id_token") if id_token else None
        ended = event_type == en201.TransactionEventEnumType.ended
        # A session is recorded when it starts, or when an update names its EVSE and the
        # central system does not know it yet (it restarted during the session).
        if evse_id is not None and not ended:
            new = self._events.session_started(
                self.id, evse_id, transaction_id, token, None, _station_time(timestamp)
            )
            if new:
                self._ready.add(transaction_id)
        if meter_value:
            samples = _read_samples(
                self._events, self.id, evse_id, transaction_id, samples_v201, meter_value
            )
            self._events.measured(self.id, evse_id, transaction_id, samples)
        if ended:
            self._events.session_ended(self.id, transaction_id)
        if id_token is None:
            return result201.TransactionEvent()
        return result201.TransactionEvent(id_token_info={"status": "Accepted"})

    @after(en201.Action.transaction_event)
    async def after_transaction_event(
        self,
        transaction_info: dict[str, Any],
        evse: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        transaction_id = str(transaction_info["transaction_id"])
        if evse is None or transaction_id not in self._ready:
            return
        self._ready.discard(transaction_id)
        await self._events.session_ready(self.id, int(evse["id"]))


class Link16(ChargePoint16):
    """An OCPP 1.6J charge point; its connectors are the EVSEs."""

    def __init__(
        self,
        station_id: str,
        connection: Any,
        events: Events,
        heartbeat_s: int,
        timeout_s: float,
        transaction_ids: count[int],
    ) -> None:
        super().__init__(station_id, connection, response_timeout=timeout_s)
        self._events = events
        self._heartbeat_s = heartbeat_s
        self._transaction_ids = transaction_ids

    async def send_profile(
        self, evse_id: int, schedule: Schedule, profile_id: int, transaction_id: str | None
    ) -> bool:
        """SetChargingProfile on connector `evse_id` (0: the whole station); True if accepted."""
        tx = int(transaction_id) if transaction_id is not None else None
        request = call16.SetChargingProfile(
            connector_id=evse_id, cs_charging_profiles=to_v16(schedule, profile_id, tx)
        )
        response = await self.call(request)
        return response is not None and response.status == en16.ChargingProfileStatus.accepted

    @on(en16.Action.boot_notification)
    def on_boot(self, charge_point_model: str, charge_point_vendor: str, **_: Any) -> Any:
        return result16.BootNotification(
            current_time=_now(),
            interval=self._heartbeat_s,
            status=en16.RegistrationStatus.accepted,
        )

    @after(en16.Action.boot_notification)
    async def after_boot(self, **_: Any) -> None:
        await self._events.booted(self.id)

    @on(en16.Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return result16.Heartbeat(current_time=_now())

    @on(en16.Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        return result16.Authorize(id_tag_info={"status": en16.AuthorizationStatus.accepted})

    @on(en16.Action.status_notification)
    def on_status(
        self, connector_id: int, status: str, timestamp: str | None = None, **_: Any
    ) -> Any:
        self._events.status(self.id, connector_id, status, _station_time(timestamp))
        return result16.StatusNotification()

    @on(en16.Action.meter_values)
    def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> Any:
        tx = kwargs.get("transaction_id")
        transaction_id = str(tx) if tx is not None else None
        samples = _read_samples(
            self._events, self.id, connector_id, transaction_id, samples_v16, meter_value
        )
        self._events.measured(self.id, connector_id, transaction_id, samples)
        return result16.MeterValues()

    @on(en16.Action.start_transaction)
    def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        transaction_id = next(self._transaction_ids)
        at = _station_time(timestamp)
        self._events.session_started(
            self.id, connector_id, str(transaction_id), id_tag, float(meter_start), at
        )
        return result16.StartTransaction(
            transaction_id=transaction_id,
            id_tag_info={"status": en16.AuthorizationStatus.accepted},
        )

    @after(en16.Action.start_transaction)
    async def after_start_transaction(self, connector_id: int, **_: Any) -> None:
        await self._events.session_ready(self.id, connector_id)

    @on(en16.Action.stop_transaction)
    def on_stop_transaction(
        self,
        transaction_id: int,
        meter_stop: int,
        timestamp: str,
        transaction_data: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        tx = str(transaction_id)
        if transaction_data:
            samples = _read_samples(self._events, self.id, None, tx, samples_v16, transaction_data)
            self._events.measured(self.id, None, tx, samples)
        try:
            final: MeterSample | None = MeterSample(
                parse_time(timestamp), energy_wh=float(meter_stop)
            )
        except MeterError as exc:
            self._events.unreadable(self.id, None, tx, f"StopTransaction: {exc}")
            final = None
        self._events.session_ended(self.id, tx, final)
        return result16.StopTransaction()


async def send_or_timeout(
    link: Link, evse_id: int, schedule: Schedule, profile_id: int, transaction_id: str | None
) -> bool | None:
    """`send_profile`; None if the station did not answer or went away meanwhile (no verdict,
    send again later)."""
    try:
        return await link.send_profile(evse_id, schedule, profile_id, transaction_id)
    except (TimeoutError, ConnectionError, ConnectionClosed):
        return None
