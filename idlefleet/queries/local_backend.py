"""A `FleetBackend` over in-process fleet state and ledger: for tests, benchmarks and tools.

It plans when told to (`replan`), with the same scenario the planner service would build.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np

from executor.ledger import JobLedger
from executor.validation import ReplicaValidator, ShardReport, shard_reports
from idlefleet.queries.board import PlanBoard
from idlefleet.queries.dr_decisions import DrDecisionLog
from idlefleet.queries.dr_owners import DrOwners
from idlefleet.queries.errors import UnknownIdError
from idlefleet.queries.fleet_status import current_inputs, current_scenario, fleet_status
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
    preferences_of,
    record_of,
    vehicle_page,
)
from idlefleet.queries.ports import FleetStatusView, JobRecord
from idlefleet.queries.views import PlanViews
from idlefleet.service.inputs import open_demands
from idlefleet.settings import PlannerSettings
from idlefleet.sites import SiteConfig
from optimizer import Scenario, plan_scenario
from optimizer.plan import PlanSnapshot
from streams.messages import DemandResponseEvent, Job, OwnerPreferences, Result, VehicleRecord
from streams.state import FleetState


class LocalBackend:
    """Fleet state, ledger, replica validator and plans in this process; change `state`,
    `ledger` and `validator` under `lock`."""

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
        self.validator = ReplicaValidator(_no_outputs)
        self.cancelled: set[str] = set()
        self.lock = threading.RLock()
        self.dr_owners = DrOwners(self.state.dr_events.get)
        self.dr_decisions = DrDecisionLog()

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

    def job_shards(
        self, job_id: str, first: int, limit: int
    ) -> tuple[JobRecord, list[ShardReport]]:
        with self.lock:
            record = self.job(job_id)
            return record, shard_reports(self.ledger, self.validator, job_id, first, limit)

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

    def dr_events(self) -> list[DemandResponseEvent]:
        with self.lock:
            return sorted(self.state.dr_events.values(), key=lambda event: event.event_id)

    def current_scenario(self) -> Scenario:
        with self.lock:
            demands = open_demands(self.ledger, self.cancelled)
            return current_scenario(self.now(), self.state, demands, self.sites, self.settings)

    def preferences(self, vehicle_id: str) -> OwnerPreferences | None:
        with self.lock:
            return preferences_of(self.state, vehicle_id)

    def set_preferences(self, preferences: OwnerPreferences) -> OwnerPreferences:
        """Check and apply them to state (no re-plan: `replan` plans)."""
        vehicle_id = preferences.vehicle_id
        with self.lock:
            if not known(self.state, vehicle_id):
                raise UnknownIdError("vehicle", vehicle_id)
            site_ids = {site.site_id for site in self.sites}
            check_preferences(preferences, self.now(), site_ids, record_of(self.state, vehicle_id))
            self.state.apply_preferences(preferences)
            stored = preferences_of(self.state, vehicle_id)
        assert stored is not None  # just applied
        return stored

    def register_vehicle(self, record: VehicleRecord) -> VehicleRecord:
        """Check and apply the entry to state (no re-plan: `replan` plans)."""
        check_record(record, {site.site_id for site in self.sites})
        with self.lock:
            self.state.apply_record(record)
            stored = record_of(self.state, record.vehicle_id)
        assert stored is not None  # just applied
        return stored

    def vehicle_results(self, vehicle_id: str) -> list[Result]:
        """None: nothing runs in a local backend."""
        return []

    def vehicles(self, after: str = "", limit: int | None = None) -> VehiclePage:
        with self.lock:
            return vehicle_page(self.state, after, limit)

    def replan(self, strategy: str = "milp") -> PlanViews:
        """Plan from the current slot and publish the plan with its cars' data notes."""
        with self.lock:
            demands = open_demands(self.ledger, self.cancelled)
            inputs = current_inputs(self.now(), self.state, demands, self.sites, self.settings)
        scenario = inputs.scenario
        plan = plan_scenario(
            scenario,
            strategy,
            time_limit_s=self.settings.solver_time_limit_s,
            mip_gap_frac=self.settings.solver_mip_gap_frac,
        )
        return self.board.publish(PlanSnapshot(plan, scenario), inputs.data_notes)


def _no_outputs(uri: str) -> np.ndarray:
    """The validator's reader here: nothing runs, so outputs are handed to `check`."""
    raise FileNotFoundError(f"a local backend reads no outputs ({uri})")
