"""A `FleetBackend` over in-process fleet state and ledger: for tests, benchmarks and tools.

It plans when told to (`replan`), with the same scenario the planner service would build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from executor.ledger import JobLedger
from idlefleet.queries.board import PlanBoard
from idlefleet.queries.dr_owners import DrOwners
from idlefleet.queries.fleet_status import current_scenario, fleet_status
from idlefleet.queries.job_records import (
    check_cancellable,
    check_resubmission,
    job_record,
    job_records,
)
from idlefleet.queries.ports import FleetStatusView, JobRecord
from idlefleet.queries.views import PlanViews
from idlefleet.service.inputs import open_demands
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import Scenario, plan_scenario
from optimizer.plan import PlanSnapshot
from streams.messages import DemandResponseEvent, Job, Result
from streams.state import FleetState


class LocalBackend:
    """Fleet state, ledger and plans in this process; change `state` under `lock`."""

    def __init__(
        self,
        sites: Sequence[SiteConfig],
        settings: PlannerSettings,
        clock: Callable[[], datetime],
        board: PlanBoard | None = None,
    ) -> None:
        self.sites = list(sites)
        self.settings = settings
        self.clock = clock
        self.board = board or PlanBoard()
        self.state = FleetState()
        self.ledger = JobLedger()
        self.cancelled: set[str] = set()
        self.lock = threading.RLock()
        self.dr_owners = DrOwners(self.state.dr_events.get)

    def now(self) -> datetime:
        return self.clock()

    def submit_job(self, job: Job) -> tuple[JobRecord, bool]:
        with self.lock:
            known = self.ledger.job(job.job_id)
            if known is not None:
                check_resubmission(known, job)
            created = self.ledger.register(job)
            return self.job(job.job_id), created

    def job(self, job_id: str) -> JobRecord:
        with self.lock:
            return job_record(self.ledger.snapshot(), job_id, self.cancelled, {}, self.now())

    def job_outputs(self, job_id: str) -> tuple[JobRecord, list[Result]]:
        """The job and no outputs: nothing runs in a local backend."""
        return self.job(job_id), []

    def cancel_job(self, job_id: str) -> JobRecord:
        with self.lock:
            check_cancellable(self.job(job_id))
            self.cancelled.add(job_id)
            return self.job(job_id)

    def jobs(self) -> list[JobRecord]:
        with self.lock:
            return job_records(self.ledger.snapshot(), self.cancelled, {}, self.now())

    def fleet_status(self) -> FleetStatusView:
        with self.lock:
            return fleet_status(self.state, self.sites, self.jobs(), self.now())

    def apply_dr_event(self, event: DemandResponseEvent) -> None:
        with self.lock:
            changed = self.state.apply_dr_event(event)
        if changed:
            self.replan()

    def current_scenario(self) -> Scenario:
        with self.lock:
            demands = open_demands(self.ledger, self.cancelled)
            return current_scenario(self.now(), self.state, demands, self.sites, self.settings)

    def replan(self, strategy: str = "milp") -> PlanViews:
        """Plan from the current slot and publish the plan."""
        scenario = self.current_scenario()
        plan = plan_scenario(
            scenario,
            strategy,
            time_limit_s=self.settings.solver_time_limit_s,
            mip_gap_frac=self.settings.solver_mip_gap_frac,
        )
        return self.board.publish(PlanSnapshot(plan, scenario))
