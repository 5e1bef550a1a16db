"""The ledger of every job's shards: what is in flight, accepted, failed or abandoned.

Per job and shard it remembers which vehicles completed it and which hold it, so that

- a (job, shard, vehicle) is accepted at most once and replicas land on distinct vehicles;
- a job never has more than `shards * replicas` executions accepted or in flight;
- a failed result, an expired lease or a car that left or went silent frees its work for
  reassignment;
- a shard that failed `max_failures_per_shard` times is abandoned (a poison shard);
- validation may ask for one more execution of a shard, or give it up as unverifiable.

No I/O, no clocks: every time is passed in (UTC, timezone-aware), every id is derived from
its inputs, so the same calls always give the same leases.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from streams.messages import Job, Result

logger = logging.getLogger(__name__)

_MAX_ID_CHARS = 200  # `streams.messages.Identifier`


def stable_id(*parts: str | int) -> str:
    """A readable id from `parts` with a digest suffix, so distinct parts never collide."""
    digest = hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()[:16]
    readable = ":".join(str(part) for part in parts)[: _MAX_ID_CHARS - 17]
    return f"{readable}-{digest}"


def require_utc(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


@dataclass(frozen=True)
class Lease:
    """Work in flight: `vehicle_id` runs shard `shard_index` of `job_id` until `lease_end`."""

    work_id: str
    job_id: str
    shard_index: int
    vehicle_id: str
    assignment_id: str
    lease_end: datetime


@dataclass(frozen=True)
class JobProgress:
    """A job's executions [count]: `total = shards * replicas` plus those validation added.

    `remaining` excludes executions of abandoned shards; the job is settled when nothing
    remains and nothing is in flight.
    """

    job_id: str
    shards: int
    replicas: int
    total: int
    accepted: int
    in_flight: int
    remaining: int
    failed_results: int
    abandoned_shards: tuple[int, ...]

    @property
    def settled(self) -> bool:
        """Every execution is accepted or abandoned, and none is in flight."""
        return self.remaining == 0 and self.in_flight == 0

    @property
    def complete(self) -> bool:
        """Every execution of every shard is accepted."""
        return self.accepted == self.total


@dataclass(frozen=True)
class ShardProgress:
    """One shard's executions: `wanted` [count] is the job's replicas plus those validation
    added; the cars whose done result was accepted, the cars running it now, its failed
    results [count] (the car's own faults aside), and whether it was given up."""

    shard_index: int
    wanted: int
    accepted: tuple[str, ...]
    in_flight: tuple[str, ...]
    failures: int
    abandoned: bool


@dataclass(frozen=True)
class LedgerSnapshot:
    """Every registered job and its progress at one moment, for readers in other threads."""

    jobs: Mapping[str, Job]
    progress: Mapping[str, JobProgress]

    @property
    def job_ids(self) -> list[str]:
        """Registered job ids, in registration order."""
        return list(self.jobs)

    def job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)


@dataclass
class _JobState:
    job: Job
    accepted: dict[int, set[str]] = field(default_factory=dict)  # shard -> vehicles
    holders: dict[int, set[str]] = field(default_factory=dict)  # shard -> vehicles in flight
    failures: dict[int, int] = field(default_factory=dict)  # shard -> failed results
    abandoned: set[int] = field(default_factory=set)
    extra: dict[int, int] = field(default_factory=dict)  # shard -> executions added
    extra_count: int = 0
    accepted_count: int = 0
    in_flight_count: int = 0
    abandoned_open: int = 0  # executions given up with abandoned shards
    failed_results: int = 0
    low_water: int = 0  # no shard below this index has an open execution

    def open_executions(self, shard: int) -> int:
        if shard in self.abandoned:
            return 0
        taken = len(self.accepted.get(shard, ())) + len(self.holders.get(shard, ()))
        return self.job.replicas + self.extra.get(shard, 0) - taken


class JobLedger:
    """Per job and shard: which vehicles completed it and which work is in flight."""

    def __init__(self, *, max_failures_per_shard: int | None = 3) -> None:
        if max_failures_per_shard is not None and max_failures_per_shard < 1:
            raise ValueError(f"max_failures_per_shard must be >= 1, got {max_failures_per_shard}")
        self.max_failures_per_shard = max_failures_per_shard
        self._jobs: dict[str, _JobState] = {}
        self._leases: dict[str, Lease] = {}
        self._settled_work: set[str] = set()  # work_ids whose result was recorded
        self._attempts: dict[tuple[str, int, str], int] = {}

    # -- jobs ---------------------------------------------------------------------------
    def register(self, job: Job) -> bool:
        """Add a job; False (and no change) if its job_id is already registered."""
        known = self._jobs.get(job.job_id)
        if known is not None:
            if known.job != job:
                logger.warning("job %s re-registered with other content; kept first", job.job_id)
            return False
        self._jobs[job.job_id] = _JobState(job)
        return True

    def job(self, job_id: str) -> Job | None:
        """The registered job, or None."""
        state = self._jobs.get(job_id)
        return None if state is None else state.job

    @property
    def job_ids(self) -> list[str]:
        """Registered job ids, in registration order."""
        return list(self._jobs)

    # -- queries ------------------------------------------------------------------------
    def executions_remaining(self, job_id: str) -> int:
        """`total - accepted - in_flight` (minus abandoned executions) [count]."""
        state = self._state(job_id)
        job = state.job
        return (
            job.shards * job.replicas
            + state.extra_count
            - state.accepted_count
            - state.in_flight_count
            - state.abandoned_open
        )

    def accepted_vehicles(self, job_id: str, shard_index: int) -> frozenset[str]:
        """Vehicles whose done result for this shard was accepted."""
        return frozenset(self._state(job_id).accepted.get(shard_index, ()))

    def leases(self, job_id: str | None = None) -> list[Lease]:
        """Work in flight (of one job, or all), in the order it was leased."""
        return [lease for lease in self._leases.values() if job_id in (None, lease.job_id)]

    def job_progress(self, job_id: str) -> JobProgress:
        """Counts of a job's executions."""
        state = self._state(job_id)
        job = state.job
        return JobProgress(
            job_id=job_id,
            shards=job.shards,
            replicas=job.replicas,
            total=job.shards * job.replicas + state.extra_count,
            accepted=state.accepted_count,
            in_flight=state.in_flight_count,
            remaining=self.executions_remaining(job_id),
            failed_results=state.failed_results,
            abandoned_shards=tuple(sorted(state.abandoned)),
        )

    def shard_progress(self, job_id: str, first: int, limit: int) -> list[ShardProgress]:
        """Shards `first` to `first + limit - 1` of a job (those it has), in shard order."""
        state = self._state(job_id)
        job = state.job
        return [
            ShardProgress(
                shard_index=shard,
                wanted=job.replicas + state.extra.get(shard, 0),
                accepted=tuple(sorted(state.accepted.get(shard, ()))),
                in_flight=tuple(sorted(state.holders.get(shard, ()))),
                failures=state.failures.get(shard, 0),
                abandoned=shard in state.abandoned,
            )
            for shard in range(max(first, 0), min(first + max(limit, 0), job.shards))
        ]

    def snapshot(self) -> LedgerSnapshot:
        """Every registered job and its progress now (a copy the ledger never changes)."""
        return LedgerSnapshot(
            jobs={job_id: state.job for job_id, state in self._jobs.items()},
            progress={job_id: self.job_progress(job_id) for job_id in self._jobs},
        )

    def all_done(self) -> bool:
        """Every registered job settled: all executions accepted or abandoned, none in flight."""
        return all(self.job_progress(job_id).settled for job_id in self._jobs)

    def shards_by_open_executions(self, job_id: str) -> dict[int, int]:
        """For each count k > 0 of open executions, how many of the job's shards have k."""
        state = self._state(job_id)
        counts: dict[int, int] = {}
        for shard in range(state.low_water, state.job.shards):
            k = state.open_executions(shard)
            if k > 0:
                counts[k] = counts.get(k, 0) + 1
        return counts

    def vehicles_done_with(self, job_id: str) -> frozenset[str]:
        """Vehicles that can take none of the job's open executions: each shard with one
        open has already run on, or is held by, them (replicas land on distinct cars)."""
        state = self._state(job_id)
        open_shards = 0
        excluded: dict[str, int] = {}
        for shard in range(state.low_water, state.job.shards):
            if state.open_executions(shard) > 0:
                open_shards += 1
                taken = state.accepted.get(shard, set()) | state.holders.get(shard, set())
                for vehicle in taken:
                    excluded[vehicle] = excluded.get(vehicle, 0) + 1
        return frozenset(v for v, count in excluded.items() if count == open_shards)

    def eligible_shards(self, job_id: str, vehicle_id: str, limit: int) -> list[int]:
        """Up to `limit` shards, lowest index first, with an open execution that `vehicle_id`
        has neither run (accepted) nor holds."""
        state = self._state(job_id)
        chosen: list[int] = []
        if limit <= 0:
            return chosen
        shard = state.low_water
        while shard < state.job.shards and state.open_executions(shard) == 0:
            shard += 1
        state.low_water = shard
        while shard < state.job.shards and len(chosen) < limit:
            if (
                state.open_executions(shard) > 0
                and vehicle_id not in state.accepted.get(shard, ())
                and vehicle_id not in state.holders.get(shard, ())
            ):
                chosen.append(shard)
            shard += 1
        return chosen

    # -- changes ------------------------------------------------------------------------
    def lease(
        self,
        job_id: str,
        shard_index: int,
        vehicle_id: str,
        lease_end: datetime,
        assignment_id: str,
    ) -> Lease:
        """Put one execution of a shard in flight on a vehicle; ValueError if not eligible."""
        require_utc(lease_end, "lease_end")
        state = self._state(job_id)
        if not 0 <= shard_index < state.job.shards:
            raise ValueError(f"job {job_id} has no shard {shard_index}")
        if state.open_executions(shard_index) <= 0:
            raise ValueError(f"shard {shard_index} of job {job_id} has no open execution")
        if vehicle_id in state.accepted.get(shard_index, ()):
            raise ValueError(f"vehicle {vehicle_id} already ran shard {shard_index} of {job_id}")
        if vehicle_id in state.holders.get(shard_index, ()):
            raise ValueError(f"vehicle {vehicle_id} already holds shard {shard_index} of {job_id}")
        key = (job_id, shard_index, vehicle_id)
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        work_id = stable_id(job_id, shard_index, vehicle_id, attempt)
        lease = Lease(work_id, job_id, shard_index, vehicle_id, assignment_id, lease_end)
        self._leases[work_id] = lease
        state.holders.setdefault(shard_index, set()).add(vehicle_id)
        state.in_flight_count += 1
        return lease

    def accept(self, result: Result) -> bool:
        """Record a result; True if it changed the ledger.

        A done result counts once per (job, shard, vehicle); a failed one frees its work for
        reassignment. Refused (False, no change): a work_id already settled (duplicate), work
        not in flight (unknown or its lease expired), a result whose job, shard, vehicle or
        assignment differ from the lease's.
        """
        if result.work_id in self._settled_work:
            logger.debug("duplicate result for %s dropped", result.work_id)
            return False
        lease = self._leases.get(result.work_id)
        if lease is None:
            logger.info("%s result for unknown work %s refused", result.status, result.work_id)
            return False
        if (result.job_id, result.shard_index, result.vehicle_id, result.assignment_id) != (
            lease.job_id,
            lease.shard_index,
            lease.vehicle_id,
            lease.assignment_id,
        ):
            logger.warning("result for %s does not match its lease; refused", result.work_id)
            return False
        state = self._release(lease)
        self._settled_work.add(result.work_id)
        shard = lease.shard_index
        if result.status == "failed":
            state.failed_results += 1
            if result.fault == "car":  # not the shard's doing: it simply runs again
                return True
            state.failures[shard] = failures = state.failures.get(shard, 0) + 1
            limit = self.max_failures_per_shard
            if limit is not None and failures >= limit:
                self.abandon_shard(lease.job_id, shard, f"{failures} failures: {result.reason}")
            return True
        state.accepted.setdefault(shard, set()).add(lease.vehicle_id)
        state.accepted_count += 1
        if shard in state.abandoned:  # a late success fills one of the given-up executions
            state.abandoned_open -= 1
        return True

    def add_execution(self, job_id: str, shard_index: int) -> bool:
        """One more execution of a shard (validation wants another replica); False if the
        shard is abandoned."""
        state = self._state(job_id)
        if not 0 <= shard_index < state.job.shards:
            raise ValueError(f"job {job_id} has no shard {shard_index}")
        if shard_index in state.abandoned:
            return False
        state.extra[shard_index] = state.extra.get(shard_index, 0) + 1
        state.extra_count += 1
        state.low_water = min(state.low_water, shard_index)
        return True

    def abandon_shard(self, job_id: str, shard_index: int, reason: str) -> None:
        """Give up a shard's open executions (reported unmet); work in flight still counts."""
        state = self._state(job_id)
        if shard_index in state.abandoned:
            return
        state.abandoned_open += max(state.open_executions(shard_index), 0)
        state.abandoned.add(shard_index)
        logger.warning("shard %s of %s abandoned: %s", shard_index, job_id, reason)

    def release_vehicle(self, vehicle_id: str) -> list[str]:
        """Free every lease a vehicle holds (it left, or its agent went silent); work ids."""
        held = [lease for lease in self._leases.values() if lease.vehicle_id == vehicle_id]
        for lease in held:
            self._release(lease)
        return [lease.work_id for lease in held]

    def expire_leases(self, now: datetime) -> list[str]:
        """Free the work whose lease ended at or before `now`; their work_ids, oldest first."""
        require_utc(now, "now")
        expired = sorted(
            (lease for lease in self._leases.values() if lease.lease_end <= now),
            key=lambda lease: (lease.lease_end, lease.work_id),
        )
        for lease in expired:
            self._release(lease)
        return [lease.work_id for lease in expired]

    def _release(self, lease: Lease) -> _JobState:
        del self._leases[lease.work_id]
        state = self._jobs[lease.job_id]
        state.holders[lease.shard_index].discard(lease.vehicle_id)
        state.in_flight_count -= 1
        state.low_water = min(state.low_water, lease.shard_index)
        if lease.shard_index in state.abandoned:
            state.abandoned_open += 1  # the freed execution is given up, not reopened
        return state

    def _state(self, job_id: str) -> _JobState:
        state = self._jobs.get(job_id)
        if state is None:
            raise KeyError(f"job {job_id!r} is not registered")
        return state
