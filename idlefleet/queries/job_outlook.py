"""Whether a job will meet its deadline, judged against the current plan.

The plan schedules executions of each job's open work (`PlanViews.planned_executions`);
work it leaves undone before a deadline inside its horizon will miss that deadline unless a
later plan finds room (cars arriving, a cheaper slot). Work due beyond the horizon is not
judged yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from idlefleet.queries.ports import JobRecord, JobState
from idlefleet.queries.views import PlanViews


class Outlook(StrEnum):
    DONE = "done"
    ON_TRACK = "on track"  # the current plan schedules all open work
    WILL_MISS = "will miss"  # the plan leaves open work undone before a deadline it covers
    NOT_PLANNED_YET = "not planned yet"  # open work due beyond the plan's horizon
    NO_PLAN = "no plan"
    MISSED = "missed"  # the deadline passed with work undone
    STOPPED = "stopped"  # failed or cancelled


@dataclass(frozen=True)
class JobOutlook:
    """Executions open and planned in the current plan [count], time to the deadline
    (negative: passed), and the outlook."""

    open_executions: int
    planned_executions: int
    time_left: timedelta
    outlook: Outlook

    @property
    def unplanned_executions(self) -> int:
        """Open executions the current plan does not schedule [count]."""
        return max(self.open_executions - self.planned_executions, 0)


def planned_executions(views: PlanViews | None, job_id: str) -> int:
    """Executions of the job the current plan schedules [count] (0 without a plan)."""
    return 0 if views is None else views.planned_executions.get(job_id, 0)


def open_executions(record: JobRecord) -> int:
    """Executions neither accepted, in flight nor given up [count] (all while pending)."""
    job, progress = record.job, record.progress
    return job.shards * job.replicas if progress is None else progress.remaining


def job_outlook(record: JobRecord, views: PlanViews | None, now: datetime) -> JobOutlook:
    """The job's outlook at `now` [UTC] against the current plan `views`."""
    job = record.job
    remaining = open_executions(record)
    planned = planned_executions(views, job.job_id)
    outlook = _outlook(record, remaining, planned, views, now)
    return JobOutlook(remaining, planned, job.deadline - now, outlook)


def _outlook(
    record: JobRecord, remaining: int, planned: int, views: PlanViews | None, now: datetime
) -> Outlook:
    deadline = record.job.deadline
    if record.state is JobState.DONE:
        return Outlook.DONE
    if record.state in (JobState.FAILED, JobState.CANCELLED):
        return Outlook.STOPPED
    if record.state is JobState.EXPIRED or deadline <= now:
        return Outlook.MISSED
    if remaining <= planned:
        return Outlook.ON_TRACK
    if views is None:
        return Outlook.NO_PLAN
    if deadline <= views.snapshot.scenario.horizon.end:
        return Outlook.WILL_MISS
    return Outlook.NOT_PLANNED_YET
