"""The dispatcher's pure core: which concrete shards each vehicle runs in a slot.

The planner says how many shards of which job a vehicle runs in a slot (`SlotDispatch`);
the dispatcher turns that into `Assignment`s with concrete shard indices, leasing each
shard's execution from the `JobLedger` (`executor.ledger`). No I/O, no clocks: the same
calls always give the same assignments.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from executor.ledger import JobLedger, Lease, require_utc, stable_id
from streams.messages import Assignment, Job, WorkItem

logger = logging.getLogger(__name__)

#: Work items one assignment carries at most [count]: at the longest URIs the messages allow
#: (about 6.5 kB an item) an assignment stays well under the 1 MB a Kafka message may have.
MAX_WORK_ITEMS = 100


@dataclass(frozen=True)
class SlotDispatch:
    """What the planner says one vehicle does in one slot.

    `charge_power_kw` [kW] is the grid power to draw over the slot; `shards_by_job` maps a
    job_id to how many of its shards [count] the vehicle runs in the slot.
    """

    vehicle_id: str
    charge_power_kw: float
    shards_by_job: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not math.isfinite(self.charge_power_kw) or self.charge_power_kw < 0:
            raise ValueError(f"charge_power_kw must be finite and >= 0, got {self.charge_power_kw}")
        for job_id, count in self.shards_by_job.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"shards_by_job[{job_id!r}] must be an int >= 0, got {count!r}")


class Dispatcher:
    """Turns a slot's `SlotDispatch`es into `Assignment`s and leases their work.

    A lease ends at `slot_end + lease_grace`, so results sent at the end of the slot still
    count.
    """

    def __init__(
        self,
        ledger: JobLedger,
        jobs: Iterable[Job] = (),
        *,
        lease_grace: timedelta = timedelta(0),
    ) -> None:
        if lease_grace < timedelta(0):
            raise ValueError(f"lease_grace must be >= 0, got {lease_grace}")
        self.ledger = ledger
        self.lease_grace = lease_grace
        for job in jobs:
            ledger.register(job)

    def assignments_for_slot(
        self,
        dispatches: Sequence[SlotDispatch],
        slot_start: datetime,
        slot_end: datetime,
        plan_id: str,
        plan_revision: int = 0,
    ) -> list[Assignment]:
        """One Assignment per dispatch (in order; charge only when no work fits).

        Every assignment carries `plan_id` and `plan_revision` (larger for each newer plan:
        agents apply a slot's set-point from the newest revision they have seen for it).

        Each vehicle gets, per job (in job_id order), at most the planned count of the
        lowest-indexed shards it has neither run nor holds and that still have an open
        execution. Jobs unknown to the ledger, not yet released or past their deadline get
        no work; an assignment carries at most `MAX_WORK_ITEMS`. Ids: assignment_id from
        (plan_id, vehicle, slot_start); work_id from (job, shard, vehicle, attempt).
        """
        require_utc(slot_start, "slot_start")
        require_utc(slot_end, "slot_end")
        if slot_end <= slot_start:
            raise ValueError(f"slot_end {slot_end} must be after slot_start {slot_start}")
        vehicles = [dispatch.vehicle_id for dispatch in dispatches]
        if len(set(vehicles)) != len(vehicles):
            raise ValueError(f"a vehicle appears twice in one slot: {sorted(vehicles)}")
        slot_label = slot_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        # Validate every Assignment before leasing anything, so an error leaves no leases.
        shells = [
            Assignment(
                assignment_id=stable_id(plan_id, dispatch.vehicle_id, slot_label),
                plan_id=plan_id,
                plan_revision=plan_revision,
                vehicle_id=dispatch.vehicle_id,
                slot_start=slot_start,
                slot_end=slot_end,
                charge_power_kw=dispatch.charge_power_kw,
            )
            for dispatch in dispatches
        ]
        lease_end = slot_end + self.lease_grace
        assignments = []
        for dispatch, shell in zip(dispatches, shells, strict=True):
            work: list[WorkItem] = []
            for job_id, count in sorted(dispatch.shards_by_job.items()):
                job = self._runnable(job_id, slot_start, slot_end)
                room = MAX_WORK_ITEMS - len(work)
                if job is None or count <= 0:
                    continue
                if count > room:
                    logger.warning(
                        "%s: %d shards of %s planned, %d fit one assignment; the rest wait",
                        dispatch.vehicle_id,
                        count,
                        job_id,
                        room,
                    )
                leases = self._lease_shards(
                    job, dispatch.vehicle_id, min(count, room), lease_end, shell
                )
                work += [self._work_item(job, lease) for lease in leases]
            assignments.append(shell.model_copy(update={"work": work}))
        return assignments

    def _runnable(self, job_id: str, slot_start: datetime, slot_end: datetime) -> Job | None:
        job = self.ledger.job(job_id)
        if job is None:
            logger.warning("dispatch names unknown job %s; no work given", job_id)
        elif slot_end <= job.release or slot_start >= job.deadline:
            logger.warning("job %s is outside its window in slot %s; no work", job_id, slot_start)
            job = None
        return job

    def _lease_shards(
        self, job: Job, vehicle_id: str, count: int, lease_end: datetime, shell: Assignment
    ) -> list[Lease]:
        shards = self.ledger.eligible_shards(job.job_id, vehicle_id, count)
        return [
            self.ledger.lease(job.job_id, shard, vehicle_id, lease_end, shell.assignment_id)
            for shard in shards
        ]

    @staticmethod
    def _work_item(job: Job, lease: Lease) -> WorkItem:
        return WorkItem(
            work_id=lease.work_id,
            job_id=job.job_id,
            shard_index=lease.shard_index,
            model=job.model,
            input_uri=job.input_uris[lease.shard_index],
            output_uri=job.output_uri,
            input_sha256=None
            if job.input_sha256s is None
            else job.input_sha256s[lease.shard_index],
        )
