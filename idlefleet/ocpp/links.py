"""The two OCPP versions as `ocpp` ChargePoint classes that report to one `Events` sink.

Each handler turns a station's message into a call on `Events` (boot, session start and end,
meter samples) and answers it; `send_profile` sends a version-neutral `Schedule` as the
version's SetChargingProfile and says whether the station accepted it.
"""

from __future__ import annotations

from collections.abc import Sequence
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

from idlefleet.ocpp.meters import MeterSample, samples_v16, samples_v201
from idlefleet.ocpp.profiles import Schedule, to_v16, to_v201

OCPP201 = "ocpp2.0.1"
OCPP16 = "ocpp1.6"


class Events(Protocol):
    """What the central system is told by a station's handler."""

    async def booted(self, station_id: str) -> None: ...

    async def session_started(
        self, station_id: str, evse_id: int, transaction_id: str, id_token: str | None
    ) -> None: ...

    def session_ended(self, station_id: str, transaction_id: str) -> None: ...

    def status(self, station_id: str, evse_id: int, status: str) -> None: ...

    def measured(
        self,
        station_id: str,
        evse_id: int | None,
        transaction_id: str | None,
        samples: Sequence[MeterSample],
    ) -> None: ...


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
    def on_status(self, evse_id: int, connector_status: str, **_: Any) -> Any:
        self._events.status(self.id, evse_id, connector_status)
        return result201.StatusNotification()

    @on(en201.Action.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **_: Any) -> Any:
        self._events.measured(self.id, evse_id, None, samples_v201(meter_value))
        return result201.MeterValues()

    @on(en201.Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        transaction_info: dict[str, Any],
        meter_value: list[dict[str, Any]] | None = None,
        evse: dict[str, Any] | None = None,
        id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        transaction_id = str(transaction_info["transaction_id"])
        evse_id = int(evse["id"]) if evse else None
        if meter_value:
            self._events.measured(self.id, evse_id, transaction_id, samples_v201(meter_value))
        if event_type == en201.TransactionEventEnumType.ended:
            self._events.session_ended(self.id, transaction_id)
        if id_token is None:
            return result201.TransactionEvent()
        return result201.TransactionEvent(id_token_info={"status": "Accepted"})

    @after(en201.Action.transaction_event)
    async def after_transaction_event(
        self,
        event_type: str,
        transaction_info: dict[str, Any],
        evse: dict[str, Any] | None = None,
        id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        if event_type != en201.TransactionEventEnumType.started or evse is None:
            return
        token = id_token.get("id_token") if id_token else None
        await self._events.session_started(
            self.id, int(evse["id"]), str(transaction_info["transaction_id"]), token
        )


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
        self._started: dict[int, tuple[int, str]] = {}

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
    def on_status(self, connector_id: int, status: str, **_: Any) -> Any:
        self._events.status(self.id, connector_id, status)
        return result16.StatusNotification()

    @on(en16.Action.meter_values)
    def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> Any:
        tx = kwargs.get("transaction_id")
        transaction_id = str(tx) if tx is not None else None
        self._events.measured(self.id, connector_id, transaction_id, samples_v16(meter_value))
        return result16.MeterValues()

    @on(en16.Action.start_transaction)
    def on_start_transaction(self, connector_id: int, id_tag: str, **_: Any) -> Any:
        transaction_id = next(self._transaction_ids)
        self._started[transaction_id] = (connector_id, id_tag)
        return result16.StartTransaction(
            transaction_id=transaction_id,
            id_tag_info={"status": en16.AuthorizationStatus.accepted},
        )

    @after(en16.Action.start_transaction)
    async def after_start_transaction(self, connector_id: int, id_tag: str, **_: Any) -> None:
        started = [tx for tx, (c, _tag) in self._started.items() if c == connector_id]
        if not started:
            return
        transaction_id = started[-1]
        del self._started[transaction_id]
        await self._events.session_started(self.id, connector_id, str(transaction_id), id_tag)

    @on(en16.Action.stop_transaction)
    def on_stop_transaction(
        self, transaction_id: int, transaction_data: list[dict[str, Any]] | None = None, **_: Any
    ) -> Any:
        if transaction_data:
            self._events.measured(self.id, None, str(transaction_id), samples_v16(transaction_data))
        self._events.session_ended(self.id, str(transaction_id))
        return result16.StopTransaction()


async def send_or_timeout(
    link: Link, evse_id: int, schedule: Schedule, profile_id: int, transaction_id: str | None
) -> bool | None:
    """`send_profile`; None if the station did not answer (no verdict, send again later)."""
    try:
        return await link.send_profile(evse_id, schedule, profile_id, transaction_id)
    except (TimeoutError, ConnectionError):
        return None
