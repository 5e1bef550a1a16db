"""A `FleetBackend` over the running planner service.

Jobs are published on the jobs topic, so the service picks them up like any other job;
until it has read one, the job is reported as pending. Plans are followed by polling the
service's current plan and published to the board once each.

The service's reader thread changes state and ledger while the API reads them. State is
read through GIL-atomic copies (`state_copy`), never by iterating a live dict; the ledger
only through the service's snapshots, taken under its lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from kafka.errors import KafkaError

from executor.ledger import LedgerSnapshot
from executor.validation import ShardReport
from idlefleet.queries.board import PlanBoard
from idlefleet.queries.dr_decisions import DrDecisionLog
from idlefleet.queries.dr_owners import DrOwners
from idlefleet.queries.errors import PreconditionError, UnavailableError, UnknownIdError
from idlefleet.queries.fleet_status import current_scenario, fleet_status, state_copy
from idlefleet.queries.job_records import (
    check_cancellable,
    check_resubmission,
    job_record,
    job_records,
)
from idlefleet.queries.owners import (
    VehiclePage,
    check_preferences,
    check_record,
    known,
    newer_or_same,
    preferences_of,
    record_of,
    vehicle_page,
    wait_for,
)
from idlefleet.queries.ports import FleetStatusView, JobRecord
from idlefleet.service.inputs import FallbackSource, JobDemand
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import Scenario
from optimizer.plan import PlanSnapshot
from streams.errors import PublishError
from streams.messages import (
    DemandResponseEvent,
    Job,
    Message,
    OwnerPreferences,
    Result,
    VehicleRecord,
)
from streams.producer import Publisher
from streams.sources import DataNote
from streams.state import FleetState
from streams.topics import Stream
from streams.trust import Trust

DEFAULT_POLL_S = 0.25
DEFAULT_ACK_TIMEOUT_S = 10.0
#: A fleet status is reused this long [s]: it walks every car, and at 10,000 cars and a few
#: dozen calls a second the walks took half the process's GIL (py-spy, `bench load`).
DEFAULT_STATUS_MAX_AGE_S = 1.0


class PlannerPort(Protocol):
    """What the adapter reads from `idlefleet.service.planner.PlannerService`."""

    state: FleetState
    settings: PlannerSettings
    sites: list[SiteConfig]
    trust: Trust | None
    #: The labelled intensity planned on where nothing published covers (None: not planned).
    intensity_fallback: FallbackSource | None

    @property
    def current_plan(self) -> PlanSnapshot | None:
        """The plan being dispatched and its scenario; replaced whole at each re-plan."""
        ...

    def current_plan_notes(self) -> tuple[PlanSnapshot | None, tuple[DataNote, ...]]:
        """The current plan and the data notes of the run that made it, read together."""
        ...

    @property
    def cancelled_jobs(self) -> frozenset[str]: ...

    def cancel_job(self, job_id: str) -> bool:
        """Stop planning and dispatching the job's open work; True if it was not cancelled."""
        ...

    def ledger_snapshot(self) -> LedgerSnapshot:
        """Every registered job and its progress, read under the service's lock."""
        ...

    def shard_reports(self, job_id: str, first: int, limit: int) -> list[ShardReport]:
        """Shards of a registered job: executions, agreement and their cars' trust."""
        ...

    def open_demands(self) -> list[JobDemand]:
        """The open work of every job not cancelled, read under the service's lock."""
        ...

    def job_outputs(self, job_id: str) -> list[Result]:
        """For each shard that has one, the done result whose output the replica validator
        accepted, in shard order."""
        ...

    @property
    def accepted_results(self) -> list[Result]:
        """Done results the ledger accepted, in order (a copy)."""
        ...


def wall_clock() -> datetime:
    return datetime.now(UTC)


class ServiceBackend:
    """The planner service seen through the API. `start` follows its plans; `close` stops."""

    def __init__(
        self,
        service: PlannerPort,
        publisher: Publisher,
        clock: Callable[[], datetime] = wall_clock,
        board: PlanBoard | None = None,
        poll_s: float = DEFAULT_POLL_S,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        status_max_age_s: float = DEFAULT_STATUS_MAX_AGE_S,
    ) -> None:
        self.board = board or PlanBoard()
        self._service = service
        # A dict lookup is GIL-atomic: safe while the service's reader changes the dict.
        self.dr_owners = DrOwners(service.state.dr_events.get)
        self.dr_decisions = DrDecisionLog()
        self._publisher = publisher
        self._clock = clock
        self._poll_s = poll_s
        self._ack_timeout_s = ack_timeout_s
        self._pending: dict[str, Job] = {}
        self._submitting = threading.Lock()  # one submission at a time: ids checked, then sent
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._status_max_age_s = status_max_age_s
        self._status_lock = threading.Lock()  # one walk at a time; callers meanwhile wait
        self._status: tuple[float, FleetStatusView] | None = None  # (monotonic s, view)
        self._follower = threading.Thread(target=self._follow, name="api-plans", daemon=True)

    def start(self) -> ServiceBackend:
        self._follower.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._follower.is_alive():
            self._follower.join()

    def _follow(self) -> None:
        published: PlanSnapshot | None = None
        while not self._stop.wait(self._poll_s):
            snapshot, notes = self._service.current_plan_notes()
            if snapshot is not None and snapshot is not published:
                self.board.publish(snapshot, notes)
                published = snapshot

    @property
    def settings(self) -> PlannerSettings:
        return self._service.settings

    def now(self) -> datetime:
        return self._clock()

    def _pending_jobs(self, ledger: LedgerSnapshot) -> dict[str, Job]:
        """Submitted jobs the service had not read when `ledger` was taken (forgetting those
        it has)."""
        with self._pending_lock:
            known = ledger.jobs
            for job_id in [j for j in self._pending if j in known]:
                del self._pending[job_id]
            return dict(self._pending)

    def submit_job(self, job: Job) -> tuple[JobRecord, bool]:
        with self._submitting:
            ledger = self._service.ledger_snapshot()
            known = ledger.job(job.job_id) or self._pending_jobs(ledger).get(job.job_id)
            if known is None:
                try:
                    self._publisher.publish(Stream.JOBS, job).get(timeout=self._ack_timeout_s)
                except (KafkaError, PublishError) as exc:
                    raise UnavailableError(f"the broker did not take job {job.job_id!r}") from exc
                with self._pending_lock:
                    self._pending[job.job_id] = job
        if known is not None:
            check_resubmission(known, job)
        return self.job(job.job_id), known is None

    def job(self, job_id: str) -> JobRecord:
        s = self._service
        ledger = s.ledger_snapshot()
        return job_record(ledger, job_id, s.cancelled_jobs, self._pending_jobs(ledger), self.now())

    def job_outputs(self, job_id: str) -> tuple[JobRecord, list[Result]]:
        return self.job(job_id), self._service.job_outputs(job_id)

    def job_shards(
        self, job_id: str, first: int, limit: int
    ) -> tuple[JobRecord, list[ShardReport]]:
        record = self.job(job_id)
        if record.progress is None:
            return record, []
        return record, self._service.shard_reports(job_id, first, limit)

    def cancel_job(self, job_id: str) -> JobRecord:
        record = self.job(job_id)
        if record.progress is None:
            raise PreconditionError(f"job {job_id!r} is not planned yet; cancel it once it is")
        check_cancellable(record)
        self._service.cancel_job(job_id)
        return self.job(job_id)

    def jobs(self) -> list[JobRecord]:
        s = self._service
        ledger = s.ledger_snapshot()
        return job_records(ledger, s.cancelled_jobs, self._pending_jobs(ledger), self.now())

    def fleet_status(self) -> FleetStatusView:
        """The fleet's status, at most `status_max_age_s` old (its `as_of` says when)."""
        with self._status_lock:
            if self._status is None or time.monotonic() - self._status[0] >= (
                self._status_max_age_s
            ):
                s = self._service
                view = fleet_status(state_copy(s.state), s.sites, self.jobs(), self.now())
                self._status = (time.monotonic(), view)
            return self._status[1]

    def preferences(self, vehicle_id: str) -> OwnerPreferences | None:
        return preferences_of(self._service.state, vehicle_id)

    def set_preferences(self, preferences: OwnerPreferences) -> OwnerPreferences:
        """Publish them on the owner-preferences topic; returned once the service has read
        them (or newer ones): it re-plans when they change what it plans."""
        state, vehicle_id = self._service.state, preferences.vehicle_id
        if not known(state, vehicle_id):
            raise UnknownIdError("vehicle", vehicle_id)
        site_ids = {site.site_id for site in self._service.sites}
        check_preferences(preferences, self.now(), site_ids, record_of(state, vehicle_id))
        what = f"the preferences of {vehicle_id!r}"
        self._publish(Stream.OWNER_PREFERENCES, preferences, what)
        self._read_back(
            lambda: newer_or_same(preferences_of(state, vehicle_id), preferences.updated_at), what
        )
        stored = preferences_of(state, vehicle_id)
        assert stored is not None  # read back
        return stored

    def register_vehicle(self, record: VehicleRecord) -> VehicleRecord:
        """Publish the entry on the fleet-registry topic; returned once the service has read
        it (or a newer one)."""
        check_record(record, {site.site_id for site in self._service.sites})
        state, vehicle_id = self._service.state, record.vehicle_id
        what = f"the registry entry of {vehicle_id!r}"
        self._publish(Stream.FLEET_REGISTRY, record, what)
        self._read_back(
            lambda: newer_or_same(record_of(state, vehicle_id), record.updated_at), what
        )
        stored = record_of(state, vehicle_id)
        assert stored is not None  # read back
        return stored

    def vehicle_results(self, vehicle_id: str) -> list[Result]:
        return [r for r in self._service.accepted_results if r.vehicle_id == vehicle_id]

    def vehicles(self, after: str = "", limit: int | None = None) -> VehiclePage:
        return vehicle_page(self._service.state, after, limit)

    def _publish(self, stream: Stream, message: Message, what: str) -> None:
        try:
            self._publisher.publish(stream, message).get(timeout=self._ack_timeout_s)
        except (KafkaError, PublishError) as exc:
            raise UnavailableError(f"the broker did not take {what}") from exc

    def _read_back(self, taken: Callable[[], bool], what: str) -> None:
        """UnavailableError unless `taken()` holds within the ack timeout."""
        if not wait_for(taken, self._ack_timeout_s):
            raise UnavailableError(
                f"the service did not read {what} back within {self._ack_timeout_s:g} s"
            )

    def apply_dr_event(self, event: DemandResponseEvent) -> None:
        """Publish the cap on the DR topic: the service re-plans with it."""
        try:
            self._publisher.publish(Stream.DR_EVENTS, event).get(timeout=self._ack_timeout_s)
        except KafkaError as exc:
            raise UnavailableError(f"the broker did not take the DR event: {exc}") from exc

    def dr_events(self) -> list[DemandResponseEvent]:
        # a dict copy is GIL-atomic: safe while the service's reader changes the dict
        events = dict(self._service.state.dr_events).values()
        return sorted(events, key=lambda event: event.event_id)

    def current_scenario(self) -> Scenario:
        s = self._service
        return current_scenario(
            self.now(),
            state_copy(s.state),
            s.open_demands(),
            s.sites,
            s.settings,
            fallback=s.intensity_fallback,
        )
