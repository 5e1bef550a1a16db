"""Every job, every assigned execution and every result the streams carried, fleet-wide.

A service worker keeps the book whether or not it owns a job, so that when it takes a job
over (after a restart, or from a worker that left the group) it can rebuild the job's
progress from the results, and check each result against the assignment that carried its
work: the assignments topic is the durable record of every lease any worker gave.
Duplicates change nothing: a job is kept as first submitted, an execution and a result once
per execution (work id and the assignment that carried it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from streams.messages import Assignment, Job, Result

log = logging.getLogger(__name__)


Execution = tuple[str, str, str]


def execution_of(result: Result) -> Execution:
    """What identifies the execution a result reports on: (work id, assignment id, vehicle).

    The vehicle is part of it: a car proves only its own results, so another car's report
    on the same work (a forgery) can never stand in for the real one."""
    return result.work_id, result.assignment_id, result.vehicle_id


class JobBook:
    """Jobs by id, each with its results in the order they were read, and the executions
    assignments carried."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._results: dict[Execution, Result] = {}
        self._results_by_job: dict[str, list[Execution]] = {}
        #: (work id, assignment id) -> (job, shard, vehicle) of every work item assigned
        self._assigned: dict[tuple[str, str], tuple[str, int, str]] = {}

    def add_job(self, job: Job) -> bool:
        """Keep a job; False (and no change) when its id is already known."""
        known = self._jobs.get(job.job_id)
        if known is not None:
            if known != job:
                log.warning("job %s submitted again with other content; kept first", job.job_id)
            return False
        self._jobs[job.job_id] = job
        return True

    def add_result(self, result: Result) -> bool:
        """Keep a result; False (and no change) when its execution is already reported."""
        execution = execution_of(result)
        if execution in self._results:
            return False
        self._results[execution] = result
        self._results_by_job.setdefault(result.job_id, []).append(execution)
        return True

    def add_assignment(self, assignment: Assignment) -> list[Execution]:
        """Note the executions an assignment carries; return those not known before."""
        fresh = []
        for item in assignment.work:
            carried = (item.work_id, assignment.assignment_id)
            if carried not in self._assigned:
                self._assigned[carried] = (item.job_id, item.shard_index, assignment.vehicle_id)
                fresh.append((*carried, assignment.vehicle_id))
        return fresh

    def matches_assignment(self, result: Result) -> bool | None:
        """Whether a result reports on work as it was assigned; None: no such assignment read."""
        assigned = self._assigned.get((result.work_id, result.assignment_id))
        if assigned is None:
            return None
        return assigned == (result.job_id, result.shard_index, result.vehicle_id)

    def job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self) -> Iterator[Job]:
        """Known jobs in the order they were read."""
        return iter(list(self._jobs.values()))

    def result(self, execution: Execution) -> Result | None:
        return self._results.get(execution)

    def results(self, job_id: str) -> list[Result]:
        """The job's results (also those read before the job) in the order they were read."""
        return [self._results[execution] for execution in self._results_by_job.get(job_id, ())]
