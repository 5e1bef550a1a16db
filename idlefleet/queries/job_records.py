"""Jobs as the API reports them, read from a snapshot of the dispatcher's ledger."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from executor.ledger import JobProgress, LedgerSnapshot
from idlefleet.queries.errors import JobConflictError, PreconditionError, UnknownIdError
from idlefleet.queries.ports import JobRecord, JobState
from streams.messages import Job

FINISHED = frozenset({JobState.DONE, JobState.FAILED, JobState.EXPIRED})


def job_state(job: Job, progress: JobProgress, cancelled: bool, now: datetime) -> JobState:
    if cancelled:
        return JobState.CANCELLED
    if progress.complete:
        return JobState.DONE
    if progress.settled:
        return JobState.FAILED
    if job.deadline <= now and progress.in_flight == 0:
        return JobState.EXPIRED
    return JobState.OPEN


def job_record(
    ledger: LedgerSnapshot,
    job_id: str,
    cancelled: Collection[str],
    pending: Mapping[str, Job],
    now: datetime,
) -> JobRecord:
    """The job as the ledger knows it, or as submitted while the planner has not read it."""
    job = ledger.job(job_id)
    if job is None:
        if job_id in pending:
            return JobRecord(pending[job_id], JobState.PENDING, None)
        raise UnknownIdError("job", job_id)
    progress = ledger.progress[job_id]
    return JobRecord(job, job_state(job, progress, job_id in cancelled, now), progress)


def job_records(
    ledger: LedgerSnapshot, cancelled: Collection[str], pending: Mapping[str, Job], now: datetime
) -> list[JobRecord]:
    """Every job, in job_id order."""
    ids = sorted(set(ledger.job_ids) | set(pending))
    return [job_record(ledger, job_id, cancelled, pending, now) for job_id in ids]


def check_resubmission(known: Job, submitted: Job) -> None:
    """JobConflictError unless `submitted` is `known` again (its submission time aside)."""
    if known.model_copy(update={"submitted_at": submitted.submitted_at}) != submitted:
        raise JobConflictError(f"job {known.job_id!r} exists with other content")


def check_cancellable(record: JobRecord) -> None:
    if record.state in FINISHED:
        raise PreconditionError(
            f"job {record.job.job_id!r} is {record.state.value}: nothing to cancel"
        )
