"""What the API needs from the fleet: the `FleetBackend` protocol and the records it returns.

Two backends implement it: `ServiceBackend` over the running planner service (jobs go in
through Kafka like any other job) and `LocalBackend` over in-process state (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from executor.ledger import JobProgress
from executor.validation import ShardReport
from optimizer import Scenario
from streams.messages import DemandResponseEvent, Job, OwnerPreferences, Result, VehicleRecord

if TYPE_CHECKING:
    from idlefleet.queries.board import PlanBoard
    from idlefleet.queries.dr_decisions import DrDecisionLog
    from idlefleet.queries.dr_owners import DrOwners
    from idlefleet.queries.owners import VehiclePage
    from idlefleet.settings import PlannerSettings
    from idlefleet.sites import SiteConfig


class JobState(StrEnum):
    PENDING = "pending"
    OPEN = "open"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class JobRecord:
    """A job, its state and its executions (no progress while pending)."""

    job: Job
    state: JobState
    progress: JobProgress | None


@dataclass(frozen=True)
class SiteStatusView:
    """A site's parked cars: counts [count], energy and capacity [kWh], chargers [kW]."""

    site: SiteConfig
    vehicles_parked: int
    vehicles_participating: int
    energy_kwh: float
    battery_kwh: float
    charger_kw: float
    dr_event_ids: tuple[str, ...]


@dataclass(frozen=True)
class FleetStatusView:
    as_of: datetime
    latest_telemetry: datetime | None
    vehicles_known: int
    vehicles_parked: int
    vehicles_participating: int
    sites: tuple[SiteStatusView, ...]
    job_counts: Mapping[JobState, int]


class FleetBackend(Protocol):
    """The fleet as the API sees it. Methods raise `idlefleet.queries.errors` errors."""

    board: PlanBoard
    dr_owners: DrOwners
    dr_decisions: DrDecisionLog

    @property
    def settings(self) -> PlannerSettings:
        """How the fleet is planned (slot length, DR policy, ...)."""
        ...

    def now(self) -> datetime:
        """The clock plans and job states are read against [UTC]."""
        ...

    def submit_job(self, job: Job) -> tuple[JobRecord, bool]:
        """Submit `job`; True if it is new. JobConflictError for the same id with other content."""
        ...

    def apply_dr_event(self, event: DemandResponseEvent) -> None:
        """Make a decided DR cap binding, or withdraw it when `event.cancelled`."""
        ...

    def dr_events(self) -> list[DemandResponseEvent]:
        """Every DR cap the fleet holds binding (ended ones until withdrawn), by event_id."""
        ...

    def job(self, job_id: str) -> JobRecord:
        """UnknownIdError if no job has this id."""
        ...

    def cancel_job(self, job_id: str) -> JobRecord:
        """Stop planning the job's open work; PreconditionError if it has finished."""
        ...

    def jobs(self) -> Sequence[JobRecord]:
        """Every job, in job_id order."""
        ...

    def job_outputs(self, job_id: str) -> tuple[JobRecord, list[Result]]:
        """The job and, per shard that has one, the done result whose output the replica
        validator accepted, in shard order; UnknownIdError."""
        ...

    def job_shards(
        self, job_id: str, first: int, limit: int
    ) -> tuple[JobRecord, list[ShardReport]]:
        """The job and its shards `first` to `first + limit - 1`: executions, agreement and
        their cars' trust (none while pending); UnknownIdError."""
        ...

    def fleet_status(self) -> FleetStatusView: ...

    def current_scenario(self) -> Scenario:
        """The scenario the planner would plan from the current slot;
        PreconditionError when nothing can be planned (no intensity signal covers it)."""
        ...

    def preferences(self, vehicle_id: str) -> OwnerPreferences | None:
        """The owner's newest preferences; None when none were set. UnknownIdError for a
        car the fleet does not know."""
        ...

    def set_preferences(self, preferences: OwnerPreferences) -> OwnerPreferences:
        """Check and store a car's preferences; what the fleet holds once it has taken them
        (a newer set wins). InvalidFieldError naming the field (`owners.check_preferences`),
        UnknownIdError for a car the fleet does not know."""
        ...

    def register_vehicle(self, record: VehicleRecord) -> VehicleRecord:
        """Check and store a car's registry entry; the entry the fleet holds once it has
        taken it. InvalidFieldError naming the field (`owners.check_record`)."""
        ...

    def vehicle_results(self, vehicle_id: str) -> list[Result]:
        """The done results of the car's executions that the ledger accepted, in the order
        it accepted them (none for a car that never ran work)."""
        ...

    def vehicles(self, after: str = "", limit: int | None = None) -> VehiclePage:
        """The cars the fleet knows whose ids sort after `after`, at most `limit`, in
        vehicle_id order (`owners.vehicle_page`)."""
        ...
