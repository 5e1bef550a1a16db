"""The planner service: streams -> fleet state -> optimizer -> plan -> dispatched assignments.

A reader thread folds telemetry, forecasts, grid signals, jobs, results and DR events into
state as they arrive. `tick(now)` runs at every slot boundary: it waits until everything
published before it has been read, re-plans when events asked for it or the cadence is due,
and publishes one assignment per parked car for the slot that starts at `now`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from executor.dispatch import Dispatcher, JobLedger, SlotDispatch
from idlefleet.planning import (
    JobDemand,
    iso,
    safe_dispatch,
    scenario_document,
    slot_dispatches,
)
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import Plan, load_scenario, plan_scenario
from optimizer.errors import SolveError
from streams.clients import KafkaSettings
from streams.consumer import StreamReader
from streams.errors import MessageError
from streams.messages import (
    DemandResponseEvent,
    GridSignal,
    Job,
    Message,
    Result,
    SolarForecast,
    Telemetry,
)
from streams.producer import Publisher
from streams.state import FleetEventKind, FleetState
from streams.topics import Stream

log = logging.getLogger(__name__)

SERVICE_STREAMS = (
    Stream.TELEMETRY,
    Stream.SOLAR_FORECASTS,
    Stream.GRID_SIGNALS,
    Stream.JOBS,
    Stream.RESULTS,
    Stream.DR_EVENTS,
)

#: Fleet events after which the current plan no longer fits the fleet.
REPLAN_EVENTS = {
    FleetEventKind.ARRIVED,
    FleetEventKind.PLUGGED_IN,
    FleetEventKind.DEPARTED,
    FleetEventKind.UNPLUGGED,
    FleetEventKind.CONSENT_WITHDRAWN,
    FleetEventKind.CONSENT_GIVEN,
}


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


@dataclass
class TickReport:
    """What one slot boundary did."""

    slot_start: datetime
    replanned: PlanRecord | None
    assignments: int
    work_items: int
    fallback_vehicles: list[str] = field(default_factory=list)


class PlannerService:
    """Consumes the fleet's streams, plans, and dispatches slot by slot."""

    def __init__(
        self,
        kafka: KafkaSettings,
        settings: PlannerSettings,
        sites: list[SiteConfig],
    ) -> None:
        self.settings = settings
        self.sites = sites
        self.state = FleetState()
        self.ledger = JobLedger()
        self.plans: list[PlanRecord] = []
        self.accepted_results: list[Result] = []
        self._plan: Plan | None = None
        self._plan_start: datetime | None = None
        self._plan_slots = 0
        self._replan_reasons: set[str] = {"start"}
        self._lock = threading.Lock()
        self._publisher = Publisher(kafka)
        self._dispatcher = Dispatcher(
            self.ledger, lease_grace=timedelta(minutes=settings.slot_minutes)
        )
        self._reader = StreamReader(
            kafka, settings.group_id, SERVICE_STREAMS, self._handle, self._publisher
        )
        self._site_ids = {site.site_id for site in sites}

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> PlannerService:
        self._reader.start()
        return self

    def stop(self) -> None:
        self._reader.stop()
        self._publisher.flush()
        self._publisher.close()

    @property
    def reader_failure(self) -> BaseException | None:
        return self._reader.failure

    # -- ingestion (reader thread) ------------------------------------------------------
    def _handle(self, stream: Stream, message: Message) -> None:
        with self._lock:
            if isinstance(message, Telemetry):
                self._on_telemetry(message)
            elif isinstance(message, SolarForecast):
                if self.state.apply_solar(message):
                    self._replan_reasons.add("solar-forecast")
            elif isinstance(message, GridSignal):
                if self.state.apply_grid(message):
                    self._replan_reasons.add("grid-signal")
            elif isinstance(message, Job):
                if self.ledger.register(message):
                    self._replan_reasons.add("new-job")
            elif isinstance(message, Result):
                self._on_result(message)
            elif isinstance(message, DemandResponseEvent) and self.state.apply_dr_event(message):
                self._replan_reasons.add("dr-event")

    def _on_telemetry(self, telemetry: Telemetry) -> None:
        if telemetry.site_id is not None and telemetry.site_id not in self._site_ids:
            raise MessageError(f"site_id: unknown site {telemetry.site_id!r}")
        for event in self.state.apply_telemetry(telemetry):
            if event.kind in REPLAN_EVENTS:
                self._replan_reasons.add(event.kind.value)

    def _on_result(self, result: Result) -> None:
        if self.ledger.accept(result):
            if result.status == "done":
                self.accepted_results.append(result)
            else:
                self._replan_reasons.add("failed-work")

    @property
    def results_accepted(self) -> int:
        return len(self.accepted_results)

    @property
    def dead_letters(self) -> int:
        return self._reader.records_dead_lettered

    def catch_up(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything published so far has been read into state."""
        return self._reader.wait_caught_up(timeout_s)

    # -- planning and dispatch (caller's thread) ----------------------------------------
    def tick(self, now: datetime, catch_up_timeout_s: float = 30.0) -> TickReport:
        """Plan if needed and dispatch the slot starting at `now` (a slot boundary)."""
        if not self.catch_up(catch_up_timeout_s):
            log.warning("tick %s: streams not caught up after %.0f s", iso(now), catch_up_timeout_s)
        with self._lock:
            expired = self.ledger.expire_leases(now)
            if expired:
                self._replan_reasons.add("expired-lease")
            record = self._replan_if_due(now)
            dispatches, fallback = self._dispatches_for(now)
            slot_end = now + timedelta(minutes=self.settings.slot_minutes)
            plan_id = f"plan-{iso(self._plan_start or now)}"
            assignments = self._dispatcher.assignments_for_slot(dispatches, now, slot_end, plan_id)
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

    def _replan_if_due(self, now: datetime) -> PlanRecord | None:
        cadence = timedelta(minutes=self.settings.slot_minutes * self.settings.replan_every_slots)
        if self._plan_start is not None and now - self._plan_start >= cadence:
            self._replan_reasons.add("cadence")
        if not self._replan_reasons:
            return None
        reasons = tuple(sorted(self._replan_reasons))
        self._replan_reasons.clear()
        demands = [
            JobDemand(job, self.ledger.shards_by_open_executions(job.job_id))
            for job in (self.ledger.job(job_id) for job_id in self.ledger.job_ids)
            if job is not None
        ]
        document = scenario_document(now, self.state, self.sites, demands, self.settings)
        if document is None:
            self._plan, self._plan_start = None, None
            return None
        scenario = load_scenario(document)
        started = time.perf_counter()
        try:
            plan = plan_scenario(
                scenario,
                "milp",
                time_limit_s=self.settings.solver_time_limit_s,
                mip_gap_frac=self.settings.solver_mip_gap_frac,
            )
            if not plan.is_feasible:
                log.error("MILP infeasible at %s: %s %s", iso(now), plan.reason, plan.offending_ids)
        except SolveError as exc:
            log.error("MILP failed at %s: %s", iso(now), exc)
            plan = None
        if plan is None or not plan.is_feasible:
            plan = plan_scenario(scenario, "immediate")
        self._plan = plan if plan.is_feasible else None
        self._plan_start = now
        self._plan_slots = scenario.horizon.slots
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
        )
        self.plans.append(record)
        log.info(
            "planned at %s (%s): %s %s objective=%s in %.2f s",
            iso(now),
            ",".join(reasons),
            record.strategy,
            record.status,
            record.objective,
            record.solve_s,
        )
        return record

    def _dispatches_for(self, now: datetime) -> tuple[list[SlotDispatch], list[str]]:
        """The plan's row for the slot at `now`; owner-first fallback for unplanned cars."""
        planned: dict[str, SlotDispatch] = {}
        if self._plan is not None and self._plan_start is not None:
            slot = round((now - self._plan_start) / timedelta(minutes=self.settings.slot_minutes))
            if 0 <= slot < self._plan_slots:
                planned = {d.vehicle_id: d for d in slot_dispatches(self._plan, slot)}
        dispatches, fallback = [], []
        for telemetry in self.state.parked():
            if telemetry.site_id not in self._site_ids:
                continue
            if telemetry.vehicle_id in planned:
                dispatches.append(planned[telemetry.vehicle_id])
            else:
                fallback.append(telemetry.vehicle_id)
                dispatches.append(safe_dispatch(telemetry))
        return dispatches, fallback
