"""The Jobs page and one job's page: progress against the deadline, each shard's
executions, agreement and cars' trust, read from a `FleetBackend` on every request."""

from __future__ import annotations

import bisect
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta

from executor.validation import CarTrust, ShardReport
from idlefleet.queries.job_outlook import JobOutlook, Outlook, job_outlook
from idlefleet.queries.ports import FleetBackend, JobRecord
from idlefleet.queries.views import PlanViews
from streams.messages import Job

#: Jobs per page of the list [count].
JOBS_PER_PAGE = 100
#: Shards per page of a job's page [count].
SHARDS_PER_PAGE = 100
#: Outlooks the page marks as trouble.
TROUBLE = frozenset({Outlook.WILL_MISS, Outlook.MISSED})


@dataclass(frozen=True)
class JobRow:
    """A job's executions [count]: `total` is shards * replicas plus those validation added
    (`added`) because replicas disagreed or a suspect car's result needed checking."""

    job: Job
    state: str
    total: int
    accepted: int
    in_flight: int
    failed_results: int
    abandoned_shards: int
    added: int
    outlook: JobOutlook

    @property
    def trouble(self) -> bool:
        """The job will miss or has missed its deadline."""
        return self.outlook.outlook in TROUBLE

    @property
    def time_left(self) -> str:
        return time_left_text(self.outlook.time_left)


@dataclass(frozen=True)
class JobsPage:
    """One page of jobs in job_id order, the number of all, and where the next page starts
    (None: this is the last)."""

    as_of: datetime
    plan_revision: int | None
    rows: tuple[JobRow, ...]
    total_jobs: int
    next_after: str | None


@dataclass(frozen=True)
class CarRow:
    """A car on a shard: what it did there and how far it is trusted."""

    trust: CarTrust
    role: str  # "accepted", "running" or "dissenting"


@dataclass(frozen=True)
class ShardRow:
    report: ShardReport
    cars: tuple[CarRow, ...]

    @property
    def state(self) -> str:
        progress = self.report.progress
        if len(progress.accepted) >= progress.wanted:
            return "done"
        if progress.abandoned:
            return "given up"
        return "running" if progress.in_flight else "open"

    @property
    def agreement(self) -> str:
        """What validation made of the shard's outputs, in words."""
        check, progress = self.report.check, self.report.progress
        if check.agreeing:
            return f"{len(check.agreeing)} agree" + (
                f", {len(check.dissenting)} dissent" if check.dissenting else ""
            )
        if check.canonical is not None:
            return "one result, not cross-checked"
        if progress.abandoned:
            return "given up"
        if progress.accepted:
            return "waiting for replicas"
        return "—"


@dataclass(frozen=True)
class JobDetail:
    """One job, a window of its shards from `first`, and where the neighbouring windows
    start (None: none)."""

    row: JobRow
    shards: tuple[ShardRow, ...]
    first: int
    previous_first: int | None
    next_first: int | None


def jobs_page(backend: FleetBackend, after: str = "", limit: int = JOBS_PER_PAGE) -> JobsPage:
    """The jobs whose ids sort after `after`, at most `limit`."""
    records = backend.jobs()
    views = backend.board.views
    now = backend.now()
    first = bisect.bisect_right([r.job.job_id for r in records], after) if after else 0
    page = records[first : first + limit]
    more = first + limit < len(records)
    return JobsPage(
        as_of=now,
        plan_revision=None if views is None else views.revision,
        rows=tuple(job_row(record, views, now) for record in page),
        total_jobs=len(records),
        next_after=page[-1].job.job_id if more and page else None,
    )


def job_detail(backend: FleetBackend, job_id: str, first: int = 0) -> JobDetail:
    """One job and its shards `first` onwards (a page of them); UnknownIdError."""
    first = max(first, 0)
    record, reports = backend.job_shards(job_id, first, SHARDS_PER_PAGE)
    row = job_row(record, backend.board.views, backend.now())
    shards = record.job.shards
    return JobDetail(
        row=row,
        shards=tuple(_shard_row(report) for report in reports),
        first=first,
        previous_first=max(first - SHARDS_PER_PAGE, 0) if first > 0 else None,
        next_first=first + SHARDS_PER_PAGE if first + SHARDS_PER_PAGE < shards else None,
    )


def job_row(record: JobRecord, views: PlanViews | None, now: datetime) -> JobRow:
    job, progress = record.job, record.progress
    base = job.shards * job.replicas
    total = base if progress is None else progress.total
    return JobRow(
        job=job,
        state=record.state.value,
        total=total,
        accepted=0 if progress is None else progress.accepted,
        in_flight=0 if progress is None else progress.in_flight,
        failed_results=0 if progress is None else progress.failed_results,
        abandoned_shards=0 if progress is None else len(progress.abandoned_shards),
        added=total - base,
        outlook=job_outlook(record, views, now),
    )


def _shard_row(report: ShardReport) -> ShardRow:
    progress, check = report.progress, report.check
    running = set(progress.in_flight)
    dissenting = set(check.dissenting)

    def role(vehicle_id: str) -> str:
        if vehicle_id in dissenting:
            return "dissenting"
        return "running" if vehicle_id in running else "accepted"

    return ShardRow(report, tuple(CarRow(car, role(car.vehicle_id)) for car in report.cars))


def time_left_text(delta: timedelta) -> str:
    """`2 d 3 h`, `3 h 05 min`, `12 min`, or `passed 12 min ago` (to the minute, rounded
    down)."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        text = f"{days} d {hours} h"
    elif hours:
        text = f"{hours} h {mins:02d} min"
    else:
        text = f"{mins} min"
    return f"passed {text} ago" if delta < timedelta(0) else text


def submit_command(api_target: str | None) -> str:
    """The client command that submits a job to this service's gRPC API (`idlefleet jobs
    submit`: it cuts, seals and uploads the data, then calls SubmitJob)."""
    target = shlex.quote(api_target) if api_target else "HOST:PORT"
    return (
        f"idlefleet jobs submit --target {target} --token-file OPERATOR.token "
        "MODEL.onnx --inputs INPUTS.npy --rows-per-shard 64 --deadline +6h --replicas 2"
    )
