"""The OCPP adapter: what stations measure goes out as measured state, plans and caps come in.

Out: every `EvseReport` of the central system becomes a `MeasuredState` of the car on the EVSE
(`measurements.measured_state`), signed with the adapter's identity and published on the
measured-state topic. The car is found in the fleet registry (`vehicles.VehicleMap`, kept
current by a reader of the fleet-registry topic): by the session's id token, else by the EVSE.
While a session runs, reports without one (a status once it ended) are the session's car's,
until the connector says it is unplugged. A report that names no single car, or holds values
no car has, goes to the dead-letter topic with the reason: `source_topic` `ocpp:<station>/<evse>`,
partition and offset -1, key `<station>/<evse>`, value the report as JSON.

In: after every new plan (`current_plan` of the service replaced) each running session gets
its car's planned powers as a TxProfile (`plans`); a session that starts gets the current
plan's powers for its car at once. The caps in force on each site (the service's accepted DR
events) become station limits (`caps`), split across the site's stations that are connected
or still hold an acknowledged limit; a cap withdrawn while in force is lifted (the station's
maximum until the cap's end).

Threads: `report` is called on the central system's event loop and only queues; a thread of
the adapter's own does the rest, calling the central system with
`asyncio.run_coroutine_threadsafe`, without waiting for stations' answers (they are logged).
"""

from __future__ import annotations

import asyncio
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from idlefleet.ocpp.caps import SiteCap, site_caps_now, split_cap
from idlefleet.ocpp.central import CentralSystem, StationView
from idlefleet.ocpp.measurements import MeasurementError, dead_letter_value, measured_state
from idlefleet.ocpp.plans import Headroom, full_power_slots, least_power, planned_slots
from idlefleet.ocpp.profiles import EvseLimits, SlotPower
from idlefleet.ocpp.reports import EvseReport, ReportKind
from idlefleet.ocpp.station import EvseRef
from idlefleet.ocpp.vehicles import UnmappedError, VehicleMap
from idlefleet.sites import SiteConfig
from optimizer.plan import PlanSnapshot
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.errors import PublishError
from streams.messages import Message, VehicleRecord
from streams.state import FleetState
from streams.topics import Stream
from streams.trust import Trust

log = logging.getLogger(__name__)

#: How long a call into the central system's loop may take before it counts as stuck [s].
CENTRAL_TIMEOUT_S = 10.0


class PlannerView(Protocol):
    """What the adapter reads of the planner service (`idlefleet.service.planner`)."""

    sites: list[SiteConfig]
    state: FleetState
    clock: Callable[[], datetime]

    @property
    def current_plan(self) -> PlanSnapshot | None: ...


@dataclass(frozen=True)
class _SentCap:
    """The station limit last sent to a station [kW] over `[start, end)`; `lifted`: it was a
    lift (the station's maximum) after its cap was withdrawn."""

    cap_kw: float
    start: datetime
    end: datetime
    lifted: bool = False


class OcppAdapter:
    """Bridges a `CentralSystem` and the planner service (see the module's doc)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        trust: Trust,
        service: PlannerView,
        station_sites: Mapping[str, str | None],
        *,
        poll_s: float = 0.5,
    ) -> None:
        """`trust` holds the adapter's identity (role adapter); `station_sites` says at which
        site each station stands; `poll_s` [s] is how often plans and caps are looked at."""
        self._service = service
        self._station_sites = dict(station_sites)
        self._poll_s = poll_s
        self._publisher = trust.publisher()
        self.vehicles = VehicleMap()
        self._registry_reader = StreamReader(
            kafka, None, [Stream.FLEET_REGISTRY], self._on_registry, None, rules=trust.rules()
        )
        self._reports: queue.SimpleQueue[EvseReport] = queue.SimpleQueue()
        self._central: CentralSystem | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ocpp-adapter", daemon=True)
        self._session_cars: dict[tuple[str, int], str] = {}
        self._plan_seen: PlanSnapshot | None = None
        #: The import the newest plan leaves free, as sessions' least powers take it.
        self._room: tuple[PlanSnapshot, Headroom] | None = None
        self._caps_sent: dict[str, _SentCap] = {}
        self._letters: list[FutureRecordMetadata] = []
        self._pending: set[Future[Any]] = set()  # calls into the central system not yet answered
        self._steps = 0  # the adapter thread's finished steps
        self._stepped = threading.Condition()
        self.published = 0
        self.dead_lettered = 0

    # -- lifecycle ------------------------------------------------------------------------
    def start(
        self,
        central: CentralSystem,
        loop: asyncio.AbstractEventLoop,
        catch_up_timeout_s: float = 30.0,
    ) -> OcppAdapter:
        """Read the fleet registry to its end, then bridge `central` (running on `loop`)."""
        self._central, self._loop = central, loop
        self._registry_reader.start()
        if not self._registry_reader.wait_caught_up(catch_up_timeout_s):
            self._registry_reader.stop()
            failure = self._registry_reader.failure
            raise TimeoutError(
                f"the fleet registry was not read within {catch_up_timeout_s:g} s"
                + (f": {failure}" if failure else "")
            )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Bridge what is queued, then stop (after the central system stopped reporting)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._registry_reader.stop()
        try:
            self._publisher.flush()
        except PublishError as exc:
            log.error("ocpp: measured states not delivered at stop: %s", exc)
        finally:
            self._publisher.close()

    def report(self, report: EvseReport) -> None:
        """The central system's `on_report`: queued for the adapter's thread."""
        self._reports.put(report)

    def wait_settled(self, timeout_s: float = 30.0) -> bool:
        """Block until the adapter has handled every report queued before the call, sent the
        current plan and caps, and every station answered (a lock-step driver, like `demo
        --ocpp`, calls it after each plan). False if that took longer than `timeout_s` [s]."""
        deadline = time.monotonic() + timeout_s
        with self._stepped:
            target = self._steps + 2  # a step that began after this call has finished
            while True:
                settled = (
                    self._steps >= target
                    and self._reports.empty()
                    and self._plan_seen is self._service.current_plan
                    and not self._pending
                )
                left = deadline - time.monotonic()
                if settled or left <= 0:
                    return settled
                self._stepped.wait(min(left, self._poll_s))

    def _on_registry(self, stream: Stream, message: Message) -> None:
        if isinstance(message, VehicleRecord):
            self.vehicles.apply(message)

    # -- the adapter's thread ----------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._step(self._poll_s)
            with self._stepped:
                self._steps += 1
                self._stepped.notify_all()
        self._step(0.0)  # what was queued before the stop

    def _step(self, wait_s: float) -> None:
        batch: list[EvseReport] = []
        try:
            batch.append(
                self._reports.get(timeout=wait_s) if wait_s else self._reports.get_nowait()
            )
            while True:
                batch.append(self._reports.get_nowait())
        except queue.Empty:
            pass
        for report in batch:
            try:
                self._handle(report)
            except Exception:  # a bug here must not stop every other station's records
                log.exception("ocpp: report %s (%s) not handled", report.where, report.kind.value)
        if batch:
            self._flush()
        if self._stop.is_set():
            return
        for follow in (self._follow_plan, self._follow_caps):
            try:
                follow()
            except Exception:
                log.exception("ocpp: %s failed", follow.__name__)

    def _flush(self) -> None:
        try:
            self._publisher.flush()
        except PublishError as exc:
            log.error("ocpp: measured states not delivered: %s", exc)
        letters, self._letters = self._letters, []
        for letter in letters:
            try:
                letter.get(timeout=30)
            except KafkaError as exc:
                log.error("ocpp: a dead letter was not delivered: %s", exc)

    # -- out: reports to measured state --------------------------------------------------
    def _handle(self, report: EvseReport) -> None:
        if report.kind is ReportKind.UNREADABLE:
            self._dead_letter(report, report.detail or "unreadable")
            return
        try:
            vehicle_id = self._car_of(report)
        except UnmappedError as exc:
            self._dead_letter(report, exc.reason)
            return
        try:
            message = measured_state(report, vehicle_id, self._station_sites.get(report.station_id))
        except MeasurementError as exc:
            self._dead_letter(report, f"{vehicle_id}: {exc.reason}")
            return
        if message is None:
            log.debug("ocpp: %s %s says nothing of a car", report.where, report.detail)
        else:
            self._publisher.publish(Stream.MEASURED_STATE, message)
            self.published += 1
        if report.kind is ReportKind.SESSION_STARTED:
            self._send_current_plan(report, vehicle_id)

    def _car_of(self, report: EvseReport) -> str:
        """The car a report is about (see the module's doc); UnmappedError if none."""
        key = (report.station_id, report.evse_id)
        if report.transaction_id is not None:
            vehicle_id = self.vehicles.vehicle_for(
                report.station_id, report.evse_id, report.id_token
            )
            self._session_cars[key] = vehicle_id
            return vehicle_id
        session_car = self._session_cars.get(key)
        if session_car is not None:
            if report.plugged_in is False:
                del self._session_cars[key]
            return session_car
        return self.vehicles.vehicle_for(report.station_id, report.evse_id, None)

    def _dead_letter(self, report: EvseReport, reason: str) -> None:
        self._letters.append(
            self._publisher.dead_letter(
                reason=f"ocpp {report.where} {report.kind.value}: {reason}",
                source_topic=f"ocpp:{report.where}",
                partition=-1,
                offset=-1,
                key=report.where.encode(),
                value=dead_letter_value(report),
            )
        )
        self.dead_lettered += 1

    # -- in: plans and caps to profiles ----------------------------------------------------
    def _send_current_plan(self, report: EvseReport, vehicle_id: str) -> None:
        snapshot = self._service.current_plan
        if snapshot is None:
            return
        limits = self._limits_of(EvseRef(report.station_id, report.evse_id))
        slots = self._car_slots(snapshot, vehicle_id, limits)
        if slots:
            self._apply_plan({EvseRef(report.station_id, report.evse_id): slots})

    def _car_slots(
        self, snapshot: PlanSnapshot, vehicle_id: str, limits: EvseLimits | None
    ) -> list[SlotPower] | None:
        """The car's planned slots, each below the EVSE's least power carried out at it for
        part of the slot where the site has room (`plans.least_power`)."""
        slots = planned_slots(snapshot, vehicle_id)
        vehicle = snapshot.scenario.vehicle_by_id.get(vehicle_id)
        if not slots or vehicle is None or limits is None or limits.min_power_kw <= 0:
            return slots
        if self._room is None or self._room[0] is not snapshot:
            self._room = (snapshot, Headroom(snapshot))
        return least_power(slots, limits.min_power_kw, vehicle.site, self._room[1])

    def _limits_of(self, ref: EvseRef) -> EvseLimits | None:
        for station in self._view():
            if station.station_id == ref.station_id:
                for evse in station.evses:
                    if evse.evse_id == ref.evse_id:
                        return evse.limits
        return None

    def _follow_plan(self) -> None:
        """Every running session gets the new plan's powers for its car."""
        snapshot = self._service.current_plan
        if snapshot is None or snapshot is self._plan_seen:
            return
        plans: dict[EvseRef, list[SlotPower]] = {}
        for station in self._view():
            for evse in station.evses:
                if evse.transaction_id is None:
                    continue
                try:
                    vehicle_id = self.vehicles.vehicle_for(
                        station.station_id, evse.evse_id, evse.id_token
                    )
                except UnmappedError:
                    continue  # its reports are dead-lettered with the reason
                slots = self._car_slots(snapshot, vehicle_id, evse.limits)
                if slots is None and evse.tx_profile:
                    slots = full_power_slots(snapshot, evse.limits.max_power_kw)
                if slots:
                    plans[EvseRef(station.station_id, evse.evse_id)] = slots
        self._plan_seen = snapshot
        if plans:
            self._apply_plan(plans)

    def _follow_caps(self) -> None:
        """Station limits for the caps in force; a cap withdrawn in force is lifted."""
        now = self._service.clock()
        events = dict(self._service.state.dr_events)  # GIL-atomic: the reader replaces entries
        caps = site_caps_now(events.values(), self._service.sites, now)
        if not caps and not self._caps_sent:
            return
        views = self._view()
        wanted = self._shares(caps, views)
        max_kw = {station.station_id: station.limits.max_power_kw for station in views}
        for station_id, sent in list(self._caps_sent.items()):
            if station_id in wanted:
                continue
            if sent.end <= now:
                del self._caps_sent[station_id]
            elif not sent.lifted and station_id in max_kw:
                wanted[station_id] = _SentCap(max_kw[station_id], now, sent.end, lifted=True)
        changed: dict[tuple[datetime, datetime], dict[str, float]] = {}
        for station_id, limit in wanted.items():
            if self._caps_sent.get(station_id) != limit:
                changed.setdefault((limit.start, limit.end), {})[station_id] = limit.cap_kw
                self._caps_sent[station_id] = limit
        for (start, end), caps_kw in changed.items():
            log.info("ocpp: station limits %s kW from %s to %s", caps_kw, start, end)
            self._call(self._central_system().apply_cap(caps_kw, start, end), "station limit")

    @staticmethod
    def _shares(caps: Mapping[str, SiteCap], views: Sequence[StationView]) -> dict[str, _SentCap]:
        """Each site's cap split across its stations that are connected or still hold an
        acknowledged limit (an offline station keeps enforcing the share it has)."""
        wanted: dict[str, _SentCap] = {}
        for site_id, cap in caps.items():
            max_kw = {
                station.station_id: station.limits.max_power_kw
                for station in views
                if station.site_id == site_id and (station.connected or station.cap_kw is not None)
            }
            for station_id, share_kw in split_cap(cap.cap_kw, max_kw).items():
                share_kw = math.floor(share_kw * 1000.0) / 1000.0  # down to 1 W: the sum stays
                wanted[station_id] = _SentCap(share_kw, cap.start, cap.end)
        return wanted

    def _apply_plan(self, plans: Mapping[EvseRef, list[SlotPower]]) -> None:
        self._call(self._central_system().apply_plan(plans), "TxProfile")

    def _view(self) -> tuple[StationView, ...]:
        future = asyncio.run_coroutine_threadsafe(self._central_system().view(), self._event_loop())
        return future.result(timeout=CENTRAL_TIMEOUT_S)

    def _call(self, work: Any, what: str) -> None:
        """Run `work` on the central system's loop; its answers are logged when they come."""
        future = asyncio.run_coroutine_threadsafe(work, self._event_loop())
        self._pending.add(future)
        future.add_done_callback(lambda done: self._answered(done, what))

    def _answered(self, done: Future[Any], what: str) -> None:
        _log_answers(done, what)
        with self._stepped:
            self._pending.discard(done)
            self._stepped.notify_all()

    def _central_system(self) -> CentralSystem:
        assert self._central is not None, "start the adapter first"
        return self._central

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "start the adapter first"
        return self._loop


def _log_answers(done: Future[Any], what: str) -> None:
    try:
        answers = done.result()
    except Exception as exc:
        log.error("ocpp: sending a %s failed: %s", what, exc)
        return
    for target, accepted in answers.items():
        if accepted is False:
            log.warning("ocpp: %s rejected a %s: it is uncontrollable now", target, what)
        elif accepted is None:
            log.info(
                "ocpp: %s not sent to %s now (kept for its session or reconnection)", what, target
            )
