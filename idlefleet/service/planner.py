"""The planner service: streams -> fleet state -> optimizer -> plan -> dispatched assignments.

Two readers fold the streams into state while `tick(now)` runs at every slot boundary: it
waits until everything published before it has been read, re-plans when events asked for it
or the cadence is due, and publishes one assignment per parked car it plans for the slot
that starts at `now`.

Scale-out. Workers share one consumer group (`settings.group_id`). Telemetry is partitioned
by site (streams.partitioning), so the group hands each site's cars to one worker. A worker
plans and dispatches only the sites on its telemetry partitions, and only the jobs that
belong to one of those partitions (each job belongs to one partition of the sites it may
run at); no two workers ever lease the same shard. Region-wide DR caps are split between
workers by their share of the region's grid connections, so together they stay under the
cap. Forecasts, grid signals, jobs, assignments, results and DR events are read in full by
every worker (a replica reader), since any worker may need any of them; the group member
that owns their partition is the one that checks them and dead-letters the bad ones.

Recovery. Nothing lives only in memory. On start, and whenever the group hands a worker a
partition it did not hold, the worker reads that partition's telemetry from the earliest
offset (below its committed offset without dead-lettering again); the replica reads its
streams from the earliest offset. Fleet state keeps the newest report per car by event
time, so replay rebuilds it exactly; jobs come back from the jobs topic, and the ledger's
progress from the results topic (`results.ResultIntake`). So a kill -9 loses no accepted
work and no job.

Cars and agents. Work comes back from a car at once when it departs, is unplugged or its
owner withdraws consent, and at the next slot when its agent has sent heartbeats and then
fell silent for `heartbeat_timeout_s` while other agents were heard; a silent car gets no
compute until it is heard again.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from executor.dispatch import Dispatcher, SlotDispatch
from executor.ledger import JobLedger, LedgerSnapshot
from executor.validation import ReplicaValidator, ShardReport, shard_reports
from idlefleet.service.dispatches import headroom, owner_first, slot_dispatches, surplus_only
from idlefleet.service.inputs import (
    FallbackSource,
    JobDemand,
    RegionIntensity,
    RollingInputs,
    open_demands,
    rolling_inputs,
)
from idlefleet.service.jobdata import JobData
from idlefleet.service.planner_process import PlannerProcess
from idlefleet.service.results import ResultIntake, unread
from idlefleet.service.sharing import region_cap_shares, resident_job
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import (
    Plan,
    Scenario,
    format_timestamp,
    load_scenario,
    plan_scenario,
    scenario_to_dict,
)
from optimizer.errors import SolveError
from optimizer.plan import PlanSnapshot
from streams.clients import KafkaSettings
from streams.consumer import DeadLetterNote, PartitionAssignment, StreamReader
from streams.jobbook import JobBook
from streams.messages import (
    Assignment,
    DemandResponseEvent,
    GridSignal,
    Heartbeat,
    Job,
    JobCancellation,
    MeasuredState,
    Message,
    OwnerPreferences,
    Result,
    SolarForecast,
    Telemetry,
    VehicleRecord,
)
from streams.partitioning import SiteShards
from streams.producer import Publisher
from streams.sources import DataNote
from streams.state import FleetEvent, FleetEventKind, FleetState
from streams.topics import Stream
from streams.trust import Trust

if TYPE_CHECKING:
    from executor.objects import ObjectStore
from streams.validation import RecordRules

log = logging.getLogger(__name__)


def _wall_clock() -> datetime:
    return datetime.now(UTC)


#: Split between workers by partition; read again from the start when a worker gains one.
SITE_STREAMS = (Stream.TELEMETRY,)
#: Read in full by every worker.
FLEET_STREAMS = (
    Stream.SOLAR_FORECASTS,
    Stream.GRID_SIGNALS,
    Stream.JOBS,
    Stream.JOB_CANCELLATIONS,
    Stream.ASSIGNMENTS,
    Stream.RESULTS,
    Stream.DR_EVENTS,
    Stream.HEARTBEATS,
    Stream.MEASURED_STATE,
    Stream.OWNER_PREFERENCES,
    Stream.FLEET_REGISTRY,
)

#: Fleet events after which the current plan no longer fits the fleet.
REPLAN_EVENTS = {
    FleetEventKind.ARRIVED,
    FleetEventKind.PLUGGED_IN,
    FleetEventKind.DEPARTED,
    FleetEventKind.UNPLUGGED,
    FleetEventKind.CONSENT_WITHDRAWN,
    FleetEventKind.CONSENT_GIVEN,
    FleetEventKind.WISHES_CHANGED,
    FleetEventKind.REGISTRY_CHANGED,
    FleetEventKind.RULES_CHANGED,
    FleetEventKind.CONTROL_CHANGED,
}
#: Fleet events after which a car's work in flight is taken back.
WORK_TAKEN_BACK = {
    FleetEventKind.DEPARTED,
    FleetEventKind.UNPLUGGED,
    FleetEventKind.CONSENT_WITHDRAWN,
}
#: A car whose measured energy is this far from the plan's path is re-planned [kWh]: at least
#: 1 kWh (telemetry rounding, a slot's compute), else 2 % of its battery.
DRIFT_MIN_KWH = 1.0
DRIFT_BATTERY_FRAC = 0.02


@dataclass(frozen=True)
class PlanRecord:
    """One planning run: when, why, and how it went."""

    planned_at: datetime
    reasons: tuple[str, ...]
    strategy: str
    status: str
    objective: float | None
    gap_frac: float | None
    solve_s: float
    vehicles: int
    open_executions: int
    #: Region -> what its intensity came from: a published signal's `source`, or the
    #: fallback's ("fallback: DE 2020 ..."), or a published signal then the fallback.
    intensity_sources: Mapping[str, str] = field(default_factory=dict)
    #: Region -> slots of the horizon planned on the fallback intensity [count].
    fallback_slots: Mapping[str, int] = field(default_factory=dict)
    #: Cars whose data comes from their sources apart: what each lacks, and how old and how
    #: estimated its energy is.
    data_notes: tuple[DataNote, ...] = ()

    @property
    def on_fallback(self) -> tuple[str, ...]:
        """Regions whose intensity came from the fallback from the first slot on."""
        return tuple(
            region
            for region, source in sorted(self.intensity_sources.items())
            if source.startswith("fallback:")
        )


@dataclass
class TickReport:
    """What one slot boundary did."""

    slot_start: datetime
    replanned: PlanRecord | None
    assignments: int
    work_items: int
    fallback_vehicles: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ServiceStatus:
    """What a worker holds: its share of the group, fleet state and job progress."""

    owned_partitions: tuple[int, ...]
    owned_sites: tuple[str, ...]
    vehicles: Mapping[str, Telemetry]
    known_jobs: tuple[str, ...]
    #: For each job this worker owns: the (shard, vehicle) executions accepted.
    accepted: Mapping[str, tuple[tuple[int, str], ...]]
    results_accepted: int
    results_refused: int
    #: Results of work no assignment read so far carried (not counted until one does).
    results_unmatched: int
    dead_letters: int
    #: Newest heartbeat per car whose agent has sent one.
    agents_heard: Mapping[str, datetime] = field(default_factory=dict)
    #: Why the service serves less well than it could (`PlannerService.health_notes`).
    degraded: tuple[str, ...] = ()


class PlannerService:
    """Consumes the fleet's streams, plans, and dispatches slot by slot."""

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: PlannerSettings,
        sites: list[SiteConfig],
        *,
        trust: Trust | None,
        store: ObjectStore | None = None,
        clock: Callable[[], datetime] | None = None,
        fallback: FallbackSource | None = None,
    ) -> None:
        """`trust` signs the assignments and checks every record read (streams.trust); None
        reads unauthenticated records and signs nothing, for tests of planning alone.
        `store` reaches jobs' `s3://` data (`idlefleet.service.jobdata`; None: none).

        `clock` is the service's time (default: the wall clock, UTC): records dated beyond it
        are refused and what the service stamps carries it. With a `fallback`, regions no
        published signal covers are planned on its labelled intensity
        (`inputs.planning_intensity`); without one they are not planned."""
        self.settings = settings
        self.clock: Callable[[], datetime] = clock or _wall_clock
        self.intensity_fallback = fallback
        self.trust = trust
        self.job_data = (
            JobData(store) if trust is None else JobData(store, trust.identities, trust.registry)
        )
        self.sites = sites
        self.state = FleetState()
        self.book = JobBook()
        self._ledger = JobLedger()
        self.plans: list[PlanRecord] = []
        self._plan: Plan | None = None
        self._plan_start: datetime | None = None
        #: Milliseconds since the epoch (wall clock) when the plan was made: newer plans, of
        #: any worker, have larger revisions, and agents apply only a slot's newest.
        self._plan_revision = 0
        #: The plan being dispatched and its scenario, replaced whole at each re-plan.
        self.current_plan: PlanSnapshot | None = None
        self._cancelled: set[str] = set()
        self._plan_slots = 0
        self._replan_reasons: set[str] = {"start"}
        self._lock = threading.Lock()
        self._site_ids = frozenset(site.site_id for site in sites)
        self._telemetry_topic = kafka.topics.name(Stream.TELEMETRY)
        self._shards: SiteShards | None = None
        self._owned_partitions: frozenset[int] = frozenset()
        self._owned_sites: frozenset[str] = frozenset()
        self._heard: dict[str, datetime] = {}  # newest heartbeat per vehicle
        #: The intensity the last scenario was built on, or why there was none.
        self._intensity: Mapping[str, RegionIntensity] = {}
        self._not_planning: str | None = None
        self.validator = ReplicaValidator(unread)
        self.results = ResultIntake(
            self._ledger, self.book, self.validator, self._replan_reasons.add
        )
        self._publisher = Publisher(kafka) if trust is None else trust.publisher()
        self._dispatcher = Dispatcher(
            self._ledger, lease_grace=timedelta(minutes=settings.slot_minutes)
        )
        # Dated by the service's clock (the wall clock unless it runs scaled).
        rules = RecordRules(
            self._site_ids,
            clock=self.clock,
            max_skew=timedelta(seconds=settings.max_clock_skew_s),
            authenticator=None if trust is None else trust.authenticator,
        )
        self._site_reader = StreamReader(
            kafka,
            settings.group_id,
            SITE_STREAMS + FLEET_STREAMS,
            self._on_site_record,
            self._publisher,
            rules=rules,
            replay=SITE_STREAMS,
            on_assignment=self._on_assignment,
        )
        self._fleet_reader = StreamReader(
            kafka, None, FLEET_STREAMS, self._on_fleet_record, self._publisher, rules=rules
        )  # (its publisher parks the valid records its handler fails on)
        self._readers = (self._site_reader, self._fleet_reader)
        self._planner = PlannerProcess()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> PlannerService:
        if self.trust is not None:
            self.trust.start()
        for reader in self._readers:
            reader.start()
        return self

    def stop(self) -> None:
        for reader in self._readers:
            reader.stop()
        if self.trust is not None:
            self.trust.stop()
        self._planner.close()
        try:
            self._publisher.flush()
        finally:
            self._publisher.close()

    @property
    def reader_failure(self) -> BaseException | None:
        return self._site_reader.failure or self._fleet_reader.failure

    def job_outputs(self, job_id: str) -> list[Result]:
        """For each shard of `job_id` that has one, the done result whose output stands for
        it: the car's whose output the replica validator accepted; in shard order."""
        with self._lock:
            chosen: dict[int, Result] = {}
            for result in self.results.accepted:
                shard = result.shard_index
                if (
                    result.job_id == job_id
                    and shard not in chosen
                    and self.validator.canonical(job_id, shard) == result.vehicle_id
                ):
                    chosen[shard] = result
        return [chosen[shard] for shard in sorted(chosen)]

    @property
    def accepted_results(self) -> list[Result]:
        """Done results the ledger accepted, in order (a copy)."""
        with self._lock:
            return list(self.results.accepted)

    @property
    def results_accepted(self) -> int:
        return len(self.results.accepted)

    @property
    def dead_letters(self) -> int:
        return sum(reader.records_dead_lettered for reader in self._readers)

    def recent_dead_letters(self) -> tuple[DeadLetterNote, ...]:
        """The records the readers parked most recently (each remembers its newest
        `streams.consumer.RECENT_DEAD_LETTERS`), newest first."""
        notes = [note for reader in self._readers for note in reader.recent_dead_letters()]
        return tuple(sorted(notes, key=lambda note: note.at, reverse=True))

    def consumer_lag_records(self) -> int | None:
        """Records published but not yet read by the readers [count]; None until every
        reader knows its partitions' high watermarks."""
        lags = [reader.lag_records for reader in self._readers]
        return None if None in lags else sum(lag for lag in lags if lag is not None)

    def newest_forecasts(self) -> tuple[datetime | None, datetime | None]:
        """When the newest solar forecast and the newest grid signal (intensity forecast)
        read were issued [UTC]; None for a kind none has been read of."""
        with self._lock:
            solar = max((f.issued_at for f in self.state.solar.values()), default=None)
            grid = max((g.issued_at for g in self.state.grid.values()), default=None)
        return solar, grid

    def catch_up(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything published so far has been read into state."""
        marks = [reader.mark() for reader in self._readers]
        deadline = time.monotonic() + timeout_s
        return all(mark.wait(max(0.0, deadline - time.monotonic())) for mark in marks)

    def status(self) -> ServiceStatus:
        """A consistent view of what this worker holds."""
        with self._lock:
            accepted = {
                job.job_id: tuple(
                    (shard, vehicle)
                    for shard in range(job.shards)
                    for vehicle in sorted(self._ledger.accepted_vehicles(job.job_id, shard))
                )
                for job in self._owned_jobs()
            }
            return ServiceStatus(
                owned_partitions=tuple(sorted(self._owned_partitions)),
                owned_sites=tuple(sorted(self._owned_sites)),
                vehicles=dict(self.state.vehicles),
                known_jobs=tuple(job.job_id for job in self.book.jobs()),
                accepted=accepted,
                results_accepted=len(self.results.accepted),
                results_refused=self.results.refused,
                results_unmatched=self.results.unmatched,
                dead_letters=self.dead_letters,
                agents_heard=dict(self._heard),
                degraded=tuple(self._health_notes()),
            )

    def health_notes(self) -> list[str]:
        """Why the service serves less well than it could, read under the state lock: the
        regions it plans on fallback intensity for, or that it cannot plan at all."""
        with self._lock:
            return self._health_notes()

    def _health_notes(self) -> list[str]:
        notes = [
            f"planning on fallback intensity for {region} ({intensity.source})"
            for region, intensity in sorted(self._intensity.items())
            if intensity.on_fallback
        ]
        if self._not_planning is not None:
            notes.append(self._not_planning)
        return notes

    def current_plan_notes(self) -> tuple[PlanSnapshot | None, tuple[DataNote, ...]]:
        """The plan being dispatched and what its cars' data lacked when it was made (the
        `data_notes` of the run that made it), read together under the state lock."""
        with self._lock:
            if self.current_plan is None or not self.plans:
                return self.current_plan, ()
            return self.current_plan, self.plans[-1].data_notes

    def ledger_snapshot(self) -> LedgerSnapshot:
        """Every job this worker registered and its progress, read under the state lock."""
        with self._lock:
            return self._ledger.snapshot()

    def shard_reports(self, job_id: str, first: int, limit: int) -> list[ShardReport]:
        """Shards `first` to `first + limit - 1` of a registered job: executions, agreement
        and their cars' trust, read under the state lock; KeyError for a job not registered."""
        with self._lock:
            return shard_reports(self._ledger, self.validator, job_id, first, limit)

    def open_demands(self) -> list[JobDemand]:
        """The open work of every registered job not cancelled, read under the state lock."""
        with self._lock:
            return open_demands(self._ledger, self._cancelled)

    # -- ingestion (reader threads) -----------------------------------------------------
    def _on_site_record(self, stream: Stream, message: Message) -> None:
        """Telemetry of the partitions this worker owns; other streams are only checked here."""
        if not isinstance(message, Telemetry):
            return
        with self._lock:
            self._apply_fleet_events(self.state.apply_telemetry(message))

    def _apply_fleet_events(self, events: list[FleetEvent]) -> None:
        """Re-plan and take work back as a car's events ask (under the state lock)."""
        for event in events:
            if event.kind in REPLAN_EVENTS and event.site_id in self._owned_sites:
                self._replan_reasons.add(event.kind.value)
            if event.kind in WORK_TAKEN_BACK and self._ledger.release_vehicle(event.vehicle_id):
                self._replan_reasons.add("work-taken-back")

    def _on_fleet_record(self, stream: Stream, message: Message) -> None:
        if isinstance(message, Result):
            with self._lock:
                fresh = self.book.add_result(message) and self._owns_job_id(message.job_id)
            if fresh:
                self._apply_results([message])
            return
        if isinstance(message, Job):
            with self._lock:  # its results read before it are applied once it is registered
                fresh = self.book.add_job(message) and self._owns(message)
                waiting = self._take_job(message) if fresh else []
            self._apply_results(waiting)
            return
        if isinstance(message, Assignment):
            with self._lock:  # results that waited for the assignment carrying their work
                waiting = [
                    result
                    for execution in self.book.add_assignment(message)
                    if (result := self.book.result(execution)) is not None
                    and self._owns_job_id(result.job_id)
                ]
            self._apply_results(waiting)
            return
        with self._lock:
            if isinstance(message, SolarForecast):
                if self.state.apply_solar(message):
                    self._replan_reasons.add("solar-forecast")
            elif isinstance(message, GridSignal):
                if self.state.apply_grid(message):
                    self._replan_reasons.add("grid-signal")
            elif isinstance(message, JobCancellation):
                self._apply_cancellation(message)
            elif isinstance(message, MeasuredState):
                self._apply_fleet_events(self.state.apply_measured(message))
            elif isinstance(message, OwnerPreferences):
                self._apply_fleet_events(self.state.apply_preferences(message))
            elif isinstance(message, VehicleRecord):
                self._apply_fleet_events(self.state.apply_record(message))
            elif isinstance(message, DemandResponseEvent) and self.state.apply_dr_event(message):
                self._replan_reasons.add("dr-event")
            elif isinstance(message, Heartbeat):
                heard = self._heard.get(message.vehicle_id)
                if heard is None or message.sent_at > heard:
                    self._heard[message.vehicle_id] = message.sent_at

    def _apply_results(self, results: list[Result]) -> None:
        """Read each done result's output (outside the lock: a slow or hostile location holds
        no one up), then bring the results to the ledger."""
        with self._lock:
            jobs = {result.job_id: self._ledger.job(result.job_id) for result in results}
        outputs = [self.job_data.output_of(result, jobs[result.job_id]) for result in results]
        with self._lock:
            for result, output in zip(results, outputs, strict=True):
                self.results.apply(result, output)

    def _on_assignment(self, assignment: PartitionAssignment) -> None:
        with self._lock:
            self._shards = SiteShards(
                self._site_ids, assignment.partition_counts[self._telemetry_topic]
            )
            self._owned_partitions = assignment.owned_partitions(self._telemetry_topic)
            self._owned_sites = self._shards.owned_sites(self._owned_partitions)
            waiting = [
                result
                for job in self.book.jobs()
                if self._owns(job)
                for result in self._take_job(job)
            ]
            self._replan_reasons.add("rebalance")
        self._apply_results(waiting)
        log.info(
            "telemetry partitions %s: sites %s",
            sorted(self._owned_partitions),
            sorted(self._owned_sites),
        )

    def _owns(self, job: Job) -> bool:
        return (
            self._shards is not None and self._shards.job_partition(job) in self._owned_partitions
        )

    def _owns_job_id(self, job_id: str) -> bool:
        job = self.book.job(job_id)
        return job is not None and self._owns(job)

    def _owned_jobs(self) -> list[Job]:
        """Registered, not cancelled jobs this worker plans, in registration order."""
        jobs = (self._ledger.job(job_id) for job_id in self._ledger.job_ids)
        return [
            job
            for job in jobs
            if job is not None and self._owns(job) and job.job_id not in self._cancelled
        ]

    @property
    def cancelled_jobs(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._cancelled)

    def cancel_job(self, job_id: str, cancelled_by: str = "api") -> bool:
        """Stop planning and dispatching the job's open work; True if it was not cancelled.

        The cancellation is published (and waited for) before it is applied here, so every
        worker, and this one after a restart, reads it from the job-cancellations topic."""
        with self._lock:
            if job_id in self._cancelled:
                return False
        cancellation = JobCancellation(
            job_id=job_id, cancelled_at=self.clock(), cancelled_by=cancelled_by
        )
        self._publisher.publish(Stream.JOB_CANCELLATIONS, cancellation)
        self._publisher.flush()
        with self._lock:  # (the reader may have applied it already)
            self._apply_cancellation(cancellation)
        return True

    def _apply_cancellation(self, cancellation: JobCancellation) -> None:
        if cancellation.job_id not in self._cancelled:
            self._cancelled.add(cancellation.job_id)
            self._replan_reasons.add("job-cancelled")
            log.info("job %s cancelled by %s", cancellation.job_id, cancellation.cancelled_by)

    def _take_job(self, job: Job) -> list[Result]:
        """Register a job this worker owns; the results the book holds for it, to bring its
        progress up to date (`_apply_results`, once the lock is released)."""
        if self._ledger.register(job):
            self._replan_reasons.add("new-job")
        return self.book.results(job.job_id)

    # -- planning and dispatch (caller's thread) ----------------------------------------
    def tick(self, now: datetime, catch_up_timeout_s: float = 30.0) -> TickReport:
        """Plan if needed and dispatch the slot starting at `now` (a slot boundary).

        The solver runs without the state lock, so the readers keep polling (a reader that
        stalls past `max_poll_interval_ms` would be dropped from the group), and in a child
        process (`PlannerProcess`), so model building does not take the GIL from the readers
        and the API.
        """
        failure = self.reader_failure
        if failure is not None:
            raise RuntimeError("a stream reader stopped: state is no longer current") from failure
        if not self.catch_up(catch_up_timeout_s):
            log.warning(
                "tick %s: streams not caught up after %.0f s",
                format_timestamp(now),
                catch_up_timeout_s,
            )
        with self._lock:
            if self._ledger.expire_leases(now):
                self._replan_reasons.add("expired-lease")
            for vehicle_id in self._silent(now):
                if self._ledger.release_vehicle(vehicle_id):
                    log.warning("agent of %s is silent: its work is taken back", vehicle_id)
                    self._replan_reasons.add("agent-silent")
            drifted = self._drifted()
            if drifted:
                log.info("energy off the plan's path: %s", ", ".join(drifted))
                self._replan_reasons.add("energy-drift")
            due = self._scenario_if_due(now)
        record = None if due is None else self._solve(now, *due)
        with self._lock:
            dispatches, fallback = self._dispatches_for(now)
            slot_end = now + timedelta(minutes=self.settings.slot_minutes)
            plan_id = f"plan-{format_timestamp(self._plan_start or now)}"
            assignments = self._dispatcher.assignments_for_slot(
                dispatches, now, slot_end, plan_id, self._plan_revision
            )
            self.results.issued(assignments)
            for a in assignments:  # what the estimate of a car without SoC must take off
                if a.work:
                    self.state.apply_compute(a.vehicle_id, a.slot_start, a.slot_end)
            jobs = {
                job.job_id: job
                for a in assignments
                for item in a.work
                if (job := self._ledger.job(item.job_id)) is not None
            }
        # URLs and keys for each car (signing and wrapping take a while: not under the lock)
        grace = self._dispatcher.lease_grace
        assignments = [self.job_data.prepare(a, jobs, grace) for a in assignments]
        for assignment in assignments:
            self._publisher.publish(Stream.ASSIGNMENTS, assignment)
        self._publisher.flush()
        return TickReport(
            slot_start=now,
            replanned=record,
            assignments=len(assignments),
            work_items=sum(len(a.work) for a in assignments),
            fallback_vehicles=fallback,
        )

    def _scenario_if_due(self, now: datetime) -> tuple[RollingInputs, tuple[str, ...]] | None:
        """The scenario to plan and why, when a re-plan is due and something can be planned."""
        cadence = timedelta(minutes=self.settings.slot_minutes * self.settings.replan_every_slots)
        if self._plan_start is not None and now - self._plan_start >= cadence:
            self._replan_reasons.add("cadence")
        if not self._replan_reasons:
            return None
        reasons = tuple(sorted(self._replan_reasons))
        self._replan_reasons.clear()
        inputs = self._scenario(now)
        self._note_intensity(now, inputs)
        if inputs is None:
            self._plan, self._plan_start = None, None
            self.current_plan = None
            return None
        return inputs, reasons

    def _note_intensity(self, now: datetime, inputs: RollingInputs | None) -> None:
        """Keep what the scenario's intensity came from; log when a region starts or stops
        being planned on the fallback. Needs the lock."""
        before = {region for region, i in self._intensity.items() if i.on_fallback}
        self._intensity = {} if inputs is None else dict(inputs.intensity)
        self._not_planning = (
            None
            if inputs is not None or not self._owned_sites
            else f"not planning: no grid intensity signal covers {format_timestamp(now)}"
        )
        after = {region for region, i in self._intensity.items() if i.on_fallback}
        for region in sorted(after - before):
            log.warning(
                "planning on fallback intensity for %s: no published signal covers %s; %s",
                region,
                format_timestamp(now),
                self._intensity[region].source,
            )
        for region in sorted(before - after):
            if region in self._intensity:
                log.warning(
                    "%s: planning on %s now, no longer on the fallback",
                    region,
                    self._intensity[region].source,
                )

    def _silent(self, now: datetime) -> set[str]:
        """Vehicles whose agent sent heartbeats, then none for the heartbeat timeout.

        Silence is measured up to `now` or the newest heartbeat of any agent, whichever is
        earlier: agents' clocks, not the planner's, say how long one has been quiet, and when
        every agent is quiet (the broker may be the one away) leases end as planned.
        """
        if not self._heard:
            return set()
        timeout = timedelta(seconds=self.settings.heartbeat_timeout_s)
        reference = min(now, max(self._heard.values()))
        return {vehicle for vehicle, heard in self._heard.items() if reference - heard > timeout}

    def _compute_limits(self, now: datetime) -> dict[str, int]:
        """Shards per slot [count] for cars that get less than they offer: none for silent
        agents and for cars that already ran every open shard of every open job, less for
        unreliable cars (`Reliability.shards_per_slot`)."""
        idle = self._silent(now)
        open_jobs = [
            job.job_id
            for job in self._owned_jobs()
            if self._ledger.executions_remaining(job.job_id)
        ]
        if open_jobs:
            idle |= frozenset.intersection(*(self._ledger.vehicles_done_with(j) for j in open_jobs))
        reliability = self.validator.reliability
        limits = {}
        for telemetry in self.state.parked():
            vehicle = telemetry.vehicle_id
            offered = telemetry.shards_per_slot
            allowed = 0 if vehicle in idle else reliability.shards_per_slot(vehicle, offered)
            if allowed != offered:
                limits[vehicle] = allowed
        return limits

    def scenario_now(self, now: datetime) -> Scenario | None:
        """The scenario this worker would plan at `now` (for what-if and DR decisions)."""
        with self._lock:
            inputs = self._scenario(now)
        return None if inputs is None else inputs.scenario

    def _scenario(self, now: datetime) -> RollingInputs | None:
        """The rolling scenario of this worker's sites and jobs from `now`; needs the lock."""
        sites = [site for site in self.sites if site.site_id in self._owned_sites]
        if not sites:
            return None
        demands = [
            JobDemand(
                resident_job(job, self._owned_sites),
                self._ledger.shards_by_open_executions(job.job_id),
            )
            for job in self._owned_jobs()
        ]
        state = dataclasses.replace(
            self.state, dr_events=region_cap_shares(self.state.dr_events, self.sites, sites)
        )
        return rolling_inputs(
            now,
            state,
            sites,
            demands,
            self.settings,
            shards_per_slot=self._compute_limits(now),
            fallback=self.intensity_fallback,
        )

    def _solve(self, now: datetime, inputs: RollingInputs, reasons: tuple[str, ...]) -> PlanRecord:
        """Solve the MILP (the `immediate` baseline if it fails) and make it the plan.

        The child loads (and so checks) the scenario's document; when it fails, the document
        is loaded here before the baseline plans it.
        """
        started = time.perf_counter()
        document = scenario_to_dict(inputs.scenario)
        scenario: Scenario | None = None
        plan: Plan | None = None
        try:
            scenario, plan = self._planner.plan(
                document,
                "milp",
                deadline_s=self.settings.planner_deadline_s,
                time_limit_s=self.settings.solver_time_limit_s,
                mip_gap_frac=self.settings.solver_mip_gap_frac,
            )
        except SolveError as exc:
            log.error("MILP failed at %s: %s", format_timestamp(now), exc)
        if scenario is None or plan is None:
            scenario = load_scenario(document)
            plan = plan_scenario(scenario, "immediate")  # obeys physics as the MILP does
        if plan.reason:
            log.warning("plan at %s: %s", format_timestamp(now), plan.reason)
        record = PlanRecord(
            planned_at=now,
            reasons=reasons,
            strategy=plan.strategy,
            status=plan.status.value,
            objective=plan.objective,
            gap_frac=plan.gap_frac,
            solve_s=time.perf_counter() - started,
            vehicles=len(scenario.vehicles),
            open_executions=sum(j.shards * j.replicas for j in scenario.jobs),
            intensity_sources={r: i.source for r, i in inputs.intensity.items()},
            fallback_slots={
                r: i.fallback_slots for r, i in inputs.intensity.items() if i.fallback_slots
            },
            data_notes=inputs.data_notes,
        )
        with self._lock:
            self._plan = plan
            # strictly increasing, even if the wall clock steps back
            self._plan_revision = max(self._plan_revision + 1, time.time_ns() // 1_000_000)
            self.current_plan = PlanSnapshot(plan, scenario, record.intensity_sources)
            self._plan_start = now
            self._plan_slots = scenario.horizon.slots
            self.plans.append(record)
        log.info(
            "planned at %s (%s): %s %s objective=%s in %.2f s%s",
            format_timestamp(now),
            ",".join(reasons),
            record.strategy,
            record.status,
            record.objective,
            record.solve_s,
            f" on fallback intensity for {', '.join(record.on_fallback)}"
            if record.on_fallback
            else "",
        )
        return record

    def _plan_slot(self, now: datetime) -> int | None:
        """The slot of the plan being dispatched that starts at `now`, if it has one."""
        if self._plan is None or self._plan_start is None:
            return None
        slot = round((now - self._plan_start) / timedelta(minutes=self.settings.slot_minutes))
        return slot if 0 <= slot < self._plan_slots else None

    def _drifted(self) -> list[str]:
        """Owned parked cars whose latest reading left the plan's energy path (read at the
        reading's time, between the boundaries around it) by more than the drift tolerance
        (`DRIFT_MIN_KWH`, `DRIFT_BATTERY_FRAC`). Readings older than the plan made it."""
        if self._plan is None or self._plan_start is None:
            return []
        slot_length = timedelta(minutes=self.settings.slot_minutes)
        drifted = []
        for car in self.state.parked():
            schedule = self._plan.vehicles.get(car.vehicle_id)
            if car.site_id not in self._owned_sites or schedule is None:
                continue
            position = (car.event_time - self._plan_start) / slot_length
            boundary = math.floor(position)
            if not 0 <= boundary < self._plan_slots:
                continue
            before, after = schedule.soc_kwh[boundary], schedule.soc_kwh[boundary + 1]
            if before is None or after is None:
                continue
            expected = before + (position - boundary) * (after - before)
            tolerance = max(DRIFT_MIN_KWH, DRIFT_BATTERY_FRAC * car.battery_kwh)
            if abs(car.energy_kwh - expected) > tolerance:
                drifted.append(car.vehicle_id)
        return drifted

    def _dispatches_for(self, now: datetime) -> tuple[list[SlotDispatch], list[str]]:
        """The plan's row for the slot at `now`; cars it does not cover share what the caps
        leave, owners first (`dispatches.owner_first`)."""
        slot = self._plan_slot(now)
        planned: dict[str, SlotDispatch] = {}
        planned_import_kw: dict[str, float] = {}
        if self._plan is not None and slot is not None:
            planned = {d.vehicle_id: d for d in slot_dispatches(self._plan, slot)}
            planned_import_kw = {
                site: series[slot] for site, series in self._plan.grid_import_kw.items()
            }
        parked = [
            t
            for t in self.state.parked()
            if t.site_id in self._owned_sites and self.state.controllable(t.vehicle_id)
        ]
        unplanned = [t for t in parked if t.vehicle_id not in planned]
        sites = [site for site in self.sites if site.site_id in self._owned_sites]
        caps = region_cap_shares(self.state.dr_events, self.sites, sites).values()
        drawn_kw = dict(planned_import_kw)  # and what cars the plan cannot steer draw
        for site_id, load_kw in self.state.uncontrolled_kw().items():
            drawn_kw[site_id] = drawn_kw.get(site_id, 0.0) + load_kw
        room = headroom(sites, caps, now, drawn_kw)
        fallback = owner_first(unplanned, sites, room, now, self.settings.slot_minutes)
        dispatches = [planned[t.vehicle_id] for t in parked if t.vehicle_id in planned]
        dispatches = surplus_only(
            dispatches,
            self._solar_only(),
            {t.vehicle_id: t.site_id for t in parked},
            planned_import_kw,
        )
        dispatches = sorted([*dispatches, *fallback], key=lambda d: d.vehicle_id)
        return dispatches, [t.vehicle_id for t in unplanned]

    def _solar_only(self) -> set[str]:
        """Cars whose owners compute only from solar surplus."""
        return {
            vehicle_id
            for vehicle_id, sources in self.state.sources.items()
            if sources.preferences is not None and sources.preferences.rules.solar_surplus_only
        }
