"""The OCPP central system: stations connect over WebSocket, the plan reaches them as profiles.

Stations connect to `ws[s]://host:port/<station id>` offering `ocpp2.0.1` or `ocpp1.6`
(2.0.1 is preferred when both are offered). Security profile 1: HTTP Basic with the station id
as user name and its configured password, checked before the WebSocket opens (an unknown
station or a wrong password gets HTTP 401); profile 2: the same over TLS (`ssl`).

On boot a station gets the default profile (full power, `profiles.default_schedule`). The
service calls `apply_plan` with each car's planned slots per EVSE and `apply_cap` with each
station's share of an accepted DR cap; `on_measurement` hears every meter sample and
`on_report` everything heard about an EVSE (`reports.EvseReport`); `view` shows what each
station is doing. A station that rejects a profile or draws more than it allows is marked
uncontrollable (`controllable`). A station that reconnects finds its state as it left it, and
is sent any profile it had not yet acknowledged.

Threads: everything here runs on the central system's event loop; another thread calls the
coroutines with `asyncio.run_coroutine_threadsafe`, and callbacks must not block.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import ssl
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from idlefleet.ocpp.compliance import ComplianceRule
from idlefleet.ocpp.links import OCPP16, OCPP201, Link, Link16, Link201, send_or_timeout
from idlefleet.ocpp.meters import MeterSample
from idlefleet.ocpp.passwords import digest, is_hashed, password_matches
from idlefleet.ocpp.profiles import (
    CAP_PROFILE_ID,
    DEFAULT_PROFILE_ID,
    EvseLimits,
    ProfileError,
    SlotPower,
    cap_schedule,
    default_schedule,
    plan_schedule,
    tx_profile_id,
)
from idlefleet.ocpp.reports import EvseReport, ReportKind, plugged_in_of
from idlefleet.ocpp.station import (
    EvseRef,
    EvseState,
    StationConfig,
    StationRegistry,
    StationState,
)

LOG = logging.getLogger(__name__)

MeasurementCallback = Callable[[str, int, MeterSample], None]
"""`on_measurement(station_id, evse_id, sample)`: called for every meter sample."""
ReportCallback = Callable[[EvseReport], None]
"""`on_report(report)`: called for everything heard about an EVSE; must not block."""


@dataclass(frozen=True)
class CentralConfig:
    """The central system's settings.

    `stations` are the declared stations by id; `ssl` turns on TLS (security profile 2);
    `heartbeat_s` [s] is the interval stations are told; `response_timeout_s` [s] how long a
    station has to answer a request.
    """

    stations: Mapping[str, StationConfig]
    rule: ComplianceRule = field(default_factory=ComplianceRule)
    ssl: ssl.SSLContext | None = None
    heartbeat_s: int = 300
    response_timeout_s: float = 30.0


@dataclass(frozen=True)
class EvseView:
    """One EVSE as the central system sees it: its session, limits and compliance.

    `tx_profile` is whether the running session holds a TxProfile the station answered.
    """

    evse_id: int
    limits: EvseLimits
    transaction_id: str | None
    id_token: str | None
    controllable: bool
    tx_profile: bool


@dataclass(frozen=True)
class StationView:
    """One station that has connected: whether it is connected now, its site and limits, the
    station limit it acknowledged and is in force now [kW] (None: none), and its EVSEs."""

    station_id: str
    site_id: str | None
    connected: bool
    limits: EvseLimits
    cap_kw: float | None
    evses: tuple[EvseView, ...]


class CentralSystem:
    """Accepts stations and sends them profiles; one event loop, started with `start`."""

    def __init__(
        self,
        config: CentralConfig,
        on_measurement: MeasurementCallback | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_report: ReportCallback | None = None,
    ) -> None:
        self._config = config
        self._on_measurement = on_measurement
        self._on_report = on_report
        self._clock = clock
        # SHA-256 of each station's last checked password: skips the slow check of a hash.
        self._checked: dict[str, bytes] = {}
        self.registry = StationRegistry(config.stations, config.rule)
        self._links: dict[str, Link] = {}
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # 1.6 transaction ids are the central system's: unique across reconnects and restarts.
        self._transaction_ids = count(int(time.time()) % 1_000_000_000)

    # -- serving -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for stations; returns the bound port (0 picks a free one)."""
        self._server = await serve(
            self._serve_station,
            host,
            port,
            subprotocols=[Subprotocol(OCPP201), Subprotocol(OCPP16)],
            process_request=self._authorize,
            ssl=self._config.ssl,
            ping_interval=None,
        )
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        """HTTP Basic against the station's password; None lets the WebSocket open.

        A hashed password is checked on a worker thread (it takes tens of milliseconds);
        once a station's password matched, the same password is known by its SHA-256.
        """
        station_id = station_id_of(request.path)
        config = self.registry.config(station_id)
        credentials = basic_credentials(request.headers.get("Authorization"))
        if config is None or credentials is None or credentials[0] != station_id:
            return _unauthorized(connection)
        password = credentials[1]
        known = self._checked.get(station_id)
        if known is not None and hmac.compare_digest(known, digest(password)):
            return None
        if is_hashed(config.password):
            matches = await asyncio.to_thread(password_matches, config.password, password)
        else:
            matches = password_matches(config.password, password)
        if not matches:
            return _unauthorized(connection)
        self._checked[station_id] = digest(password)
        return None

    async def _serve_station(self, connection: ServerConnection) -> None:
        station_id = station_id_of(connection.request.path if connection.request else "")
        protocol = connection.subprotocol
        link: Link
        if protocol == OCPP201:
            link = Link201(
                station_id,
                connection,
                self,
                self._config.heartbeat_s,
                self._config.response_timeout_s,
            )
        elif protocol == OCPP16:
            link = Link16(
                station_id,
                connection,
                self,
                self._config.heartbeat_s,
                self._config.response_timeout_s,
                self._transaction_ids,
            )
        else:
            await connection.close(1002, "no OCPP subprotocol")
            return
        state = self.registry.state(station_id)
        state.protocol, state.connected = protocol, True
        state.connections += 1
        self._links[station_id] = link
        LOG.info("station %s connected (%s, #%d)", station_id, protocol, state.connections)
        if state.booted:
            self._spawn(self._resume(state))
        try:
            await link.start()
        except ConnectionClosed:
            pass
        finally:
            if self._links.get(station_id) is link:
                del self._links[station_id]
                state.connected = False
                LOG.info("station %s disconnected", station_id)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- what the stations tell us (links.Events) ---------------------------------------------

    async def booted(self, station_id: str) -> None:
        """A station booted: it gets the default profile, then whatever it has not yet."""
        state = self.registry.state(station_id)
        state.booted = True
        state.default_acknowledged = False
        await self._resume(state)

    def session_started(
        self,
        station_id: str,
        evse_id: int,
        transaction_id: str,
        id_token: str | None,
        meter_start_wh: float | None,
        at: datetime | None = None,
    ) -> bool:
        """A car's session on an EVSE, started `at` (None: now); True if new (an update that
        names the EVSE of a session already known only adds the id token, if it brings one)."""
        state = self.registry.state(station_id)
        evse = state.evse(evse_id)
        at = at or self._clock()
        if evse.transaction_id == transaction_id:
            if id_token is not None and evse.id_token != id_token:
                evse.id_token = id_token
                self._report(state, evse, ReportKind.SESSION_STARTED, plugged_in=True, at=at)
            return False
        evse.transaction_id, evse.id_token = transaction_id, id_token
        evse.tx_schedule, evse.tx_acknowledged = None, False
        evse.session_start_wh = meter_start_wh
        start = None if meter_start_wh is None else MeterSample(at, meter_start_wh)
        self._report(state, evse, ReportKind.SESSION_STARTED, plugged_in=True, sample=start, at=at)
        return True

    async def session_ready(self, station_id: str, evse_id: int) -> None:
        """A new session was answered: it gets the plan its EVSE holds, if any."""
        state = self.registry.state(station_id)
        evse = state.evse(evse_id)
        if evse.planned and evse.transaction_id is not None:
            await self._send_plan(state, evse_id)

    def session_ended(
        self, station_id: str, transaction_id: str, final: MeterSample | None = None
    ) -> None:
        """A session ended (`final`: the register at its end, when the station said): its
        EVSE forgets it."""
        state = self.registry.state(station_id)
        evse = state.by_transaction(transaction_id)
        if evse is None:
            self._unknown_transaction(state, transaction_id, "a session end")
            return
        self._report(state, evse, ReportKind.SESSION_ENDED, sample=final)
        evse.end_transaction()

    def status(
        self, station_id: str, evse_id: int, status: str, at: datetime | None = None
    ) -> None:
        """A connector's status (Available, Occupied, Charging, ...) since `at` (None: now)."""
        state = self.registry.state(station_id)
        evse = state.evse(evse_id)
        evse.status = status
        plugged_in = plugged_in_of(status)
        self._report(state, evse, ReportKind.STATUS, plugged_in=plugged_in, detail=status, at=at)

    def measured(
        self,
        station_id: str,
        evse_id: int | None,
        transaction_id: str | None,
        samples: Sequence[MeterSample],
    ) -> None:
        """Meter samples: kept, checked against the limit in force, passed on."""
        state = self.registry.state(station_id)
        if evse_id is None or evse_id == 0:
            evse = state.by_transaction(transaction_id) if transaction_id else None
            if evse is None:
                if samples and transaction_id is not None:
                    self._unknown_transaction(state, transaction_id, "meter values")
                elif samples:  # the station's own meter (connector 0): no car's
                    LOG.debug("%s: %d station meter sample(s)", station_id, len(samples))
                return
            evse_id = evse.evse_id
        evse = state.evse(evse_id)
        for sample in samples:
            evse.last_sample = sample
            if (
                evse.transaction_id is not None
                and evse.session_start_wh is None
                and sample.energy_wh is not None
            ):
                evse.session_start_wh = sample.energy_wh
            if sample.power_kw is not None:
                evse.compliance.observe(sample.power_kw, state.limit_kw_at(evse_id, sample.time))
            if self._on_measurement is not None:
                self._on_measurement(station_id, evse_id, sample)
            self._report(state, evse, ReportKind.METER, sample=sample, at=sample.time)

    def unreadable(
        self, station_id: str, evse_id: int | None, transaction_id: str | None, reason: str
    ) -> None:
        """A station's message about an EVSE that could not be read: reported with why."""
        state = self.registry.state(station_id)
        evse = state.by_transaction(transaction_id) if transaction_id else None
        if evse is None:
            evse = state.evse(evse_id or 0)
        self._report(state, evse, ReportKind.UNREADABLE, detail=reason)

    def _unknown_transaction(self, state: StationState, transaction_id: str, what: str) -> None:
        reason = f"{what} for transaction {transaction_id!r}, which no EVSE is running"
        self._report(state, state.evse(0), ReportKind.UNREADABLE, detail=reason)

    def _report(
        self,
        state: StationState,
        evse: EvseState,
        kind: ReportKind,
        *,
        plugged_in: bool | None = None,
        sample: MeterSample | None = None,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> None:
        if self._on_report is None:
            return
        report = EvseReport(
            station_id=state.station_id,
            evse_id=evse.evse_id,
            kind=kind,
            time=at or self._clock(),
            controllable=state.controllable(evse.evse_id),
            plugged_in=plugged_in,
            sample=sample,
            transaction_id=evse.transaction_id,
            id_token=evse.id_token,
            session_start_wh=evse.session_start_wh,
            detail=detail,
        )
        try:
            self._on_report(report)
        except Exception:  # a listener's bug must not break the station's handler
            LOG.exception("on_report failed for %s (%s)", report.where, kind.value)

    def _control_lost(self, state: StationState, evse_ids: Sequence[int]) -> None:
        """Report EVSEs running a session that no longer follow their profiles."""
        for evse_id in evse_ids:
            evse = state.evse(evse_id)
            if evse.transaction_id is not None:
                self._report(state, evse, ReportKind.CONTROL, detail=_reason(state, evse))

    # -- what the service asks ----------------------------------------------------------------

    def controllable(self, station_id: str, evse_id: int) -> bool:
        """Whether the EVSE follows its profiles; the planner assumes full power if not."""
        return self.registry.state(station_id).controllable(evse_id)

    def trust(self, station_id: str) -> None:
        """An operator's word: the station follows profiles again."""
        state = self.registry.state(station_id)
        state.compliance.reset()
        for evse in state.evses.values():
            evse.compliance.reset()

    async def view(self) -> tuple[StationView, ...]:
        """Every station that has connected, as it is now (a coroutine: read on the loop)."""
        now = self._clock()
        views = []
        for state in self.registry.known():
            cap_kw = None
            if state.cap_schedule is not None and state.cap_acknowledged:
                cap_kw = state.cap_schedule.limit_kw_at(now, state.config.limits(0))
            evses = tuple(
                EvseView(
                    evse.evse_id,
                    evse.limits,
                    evse.transaction_id,
                    evse.id_token,
                    state.controllable(evse.evse_id),
                    evse.tx_schedule is not None and evse.tx_acknowledged,
                )
                for evse in sorted(state.evses.values(), key=lambda e: e.evse_id)
                if evse.evse_id != 0
            )
            views.append(
                StationView(
                    state.station_id,
                    state.config.site_id,
                    state.connected,
                    state.config.limits(0),
                    cap_kw,
                    evses,
                )
            )
        return tuple(views)

    async def apply_plan(
        self, plans: Mapping[EvseRef, Sequence[SlotPower]]
    ) -> dict[EvseRef, bool | None]:
        """Each EVSE's planned slots [kW] as a TxProfile for its running session.

        Returns per EVSE: True if the station accepted the profile, False if it rejected it
        (the EVSE is then uncontrollable), None if not sent now (no session, not connected,
        no answer, or no slot left): the plan is kept and sent when a session starts or the
        station reconnects.
        """
        refs = list(plans)
        for ref in refs:
            state = self.registry.state(ref.station_id)
            evse = state.evse(ref.evse_id)
            evse.planned = tuple(plans[ref])
            evse.tx_schedule, evse.tx_acknowledged = None, False
        results = await asyncio.gather(
            *(self._send_plan(self.registry.state(r.station_id), r.evse_id) for r in refs)
        )
        return dict(zip(refs, results, strict=True))

    async def apply_cap(
        self, caps_kw: Mapping[str, float], start: datetime, end: datetime
    ) -> dict[str, bool | None]:
        """Station-wide limits at or under each station's cap [kW] over `[start, end)`.

        Returns per station as `apply_plan` does; a cap not acknowledged is sent again on
        reconnect.
        """
        for station_id, cap_kw in caps_kw.items():
            state = self.registry.state(station_id)
            state.cap_schedule = cap_schedule(cap_kw, start, end, state.config.limits(0))
            state.cap_acknowledged = False
        ids = list(caps_kw)
        results = await asyncio.gather(*(self._send_cap(self.registry.state(i)) for i in ids))
        return dict(zip(ids, results, strict=True))

    # -- sending ------------------------------------------------------------------------------

    async def _resume(self, state: StationState) -> None:
        """Send what the station has not acknowledged: default, cap, each session's plan."""
        if not state.default_acknowledged:
            link = self._links.get(state.station_id)
            if link is None:
                return
            schedule = default_schedule(state.config.limits(1))
            accepted = await send_or_timeout(link, 0, schedule, DEFAULT_PROFILE_ID, None)
            if accepted is False:
                state.compliance.rejected("the default profile")
                self._control_lost(state, list(state.evses))
            state.default_acknowledged = accepted is not None
        if state.cap_schedule is not None and not state.cap_acknowledged:
            await self._send_cap(state)
        for evse in list(state.evses.values()):
            if evse.transaction_id is not None and evse.planned and not evse.tx_acknowledged:
                await self._send_plan(state, evse.evse_id)

    async def _send_plan(self, state: StationState, evse_id: int) -> bool | None:
        evse = state.evse(evse_id)
        link = self._links.get(state.station_id)
        if link is None or evse.transaction_id is None:
            return None
        try:
            schedule = plan_schedule(evse.planned, evse.limits, self._clock())
        except ProfileError as exc:
            LOG.info("no profile for %s/%d: %s", state.station_id, evse_id, exc)
            return None
        accepted = await send_or_timeout(
            link, evse_id, schedule, tx_profile_id(evse_id), evse.transaction_id
        )
        if accepted is False:
            evse.compliance.rejected("a TxProfile")
            self._control_lost(state, [evse_id])
        if accepted is not None:
            evse.tx_schedule, evse.tx_acknowledged = schedule, accepted
        return accepted

    async def _send_cap(self, state: StationState) -> bool | None:
        link = self._links.get(state.station_id)
        if link is None or state.cap_schedule is None:
            return None
        accepted = await send_or_timeout(link, 0, state.cap_schedule, CAP_PROFILE_ID, None)
        if accepted is False:
            state.compliance.rejected("a station limit")
            self._control_lost(state, list(state.evses))
        state.cap_acknowledged = accepted is True
        return accepted


def _reason(state: StationState, evse: EvseState) -> str:
    """Why an EVSE does not follow its profiles."""
    return evse.compliance.reason or state.compliance.reason or "not controllable"


def tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server TLS context (security profile 2) from a PEM certificate chain and its key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def station_id_of(path: str) -> str:
    """The station id: the last segment of the request path (`/ocpp/CS-1` -> `CS-1`)."""
    return unquote(path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic `Authorization` header; None if absent or malformed."""
    if header is None or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def _unauthorized(connection: ServerConnection) -> Response:
    response = connection.respond(HTTPStatus.UNAUTHORIZED, "unknown station or wrong password\n")
    response.headers["WWW-Authenticate"] = 'Basic realm="idlefleet ocpp"'
    return response
