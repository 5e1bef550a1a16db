"""The Jobs pages over a local backend: each job's executions and outlook against the plan,
a job's shards with their agreement and cars' trust, and the submit command."""

from __future__ import annotations

import shlex
from datetime import timedelta

import numpy as np
import pytest

from idlefleet.cli import build_parser
from idlefleet.queries.errors import UnknownIdError
from idlefleet.queries.job_outlook import Outlook
from idlefleet.queries.local_backend import LocalBackend
from idlefleet.sim.clock import SteppedClock
from idlefleet.web.jobs_page import (
    SHARDS_PER_PAGE,
    job_detail,
    jobs_page,
    submit_command,
    time_left_text,
)
from streams.catalog import T0
from streams.messages import Result
from tests.idlefleet.conftest import SETTINGS, SITES
from tests.streams.factories import job

LEASE_END = T0 + timedelta(minutes=15)


def finish(backend: LocalBackend, job_id: str, shard: int, car: str, output: np.ndarray) -> None:
    """`car` runs the shard and its done result passes the ledger and the validator."""
    lease = backend.ledger.lease(job_id, shard, car, LEASE_END, f"a-{car}")
    result = Result(
        work_id=lease.work_id,
        assignment_id=lease.assignment_id,
        job_id=job_id,
        shard_index=shard,
        vehicle_id=car,
        status="done",
        output_uri=f"file:///srv/out/{job_id}/{shard}-{car}.npy",
        output_sha256="d" * 64,
        finished_at=LEASE_END,
    )
    assert backend.ledger.accept(result)
    replicas = backend.ledger.job_progress(job_id).replicas
    backend.validator.check(result, replicas, output)


def test_every_job_with_its_executions_and_outlook(backend: LocalBackend) -> None:
    backend.submit_job(job("huge", 5000, deadline=T0 + timedelta(hours=1)))
    backend.submit_job(job("later", 5000, deadline=T0 + timedelta(days=2)))
    views = backend.replan()
    page = jobs_page(backend)
    rows = {row.job.job_id: row for row in page.rows}
    assert [row.job.job_id for row in page.rows] == ["embed-1", "huge", "later"]
    assert page.total_jobs == 3 and page.next_after is None
    assert page.plan_revision == views.revision
    embed = rows["embed-1"]
    assert (embed.total, embed.accepted, embed.in_flight, embed.added) == (4, 0, 0, 0)
    assert embed.outlook.planned_executions == views.planned_executions["embed-1"] == 4
    assert embed.outlook.outlook is Outlook.ON_TRACK and not embed.trouble
    assert embed.time_left == "4 h 00 min"
    huge = rows["huge"]
    assert huge.outlook.planned_executions < huge.outlook.open_executions == 5000
    assert huge.outlook.outlook is Outlook.WILL_MISS and huge.trouble
    assert rows["later"].outlook.outlook is Outlook.NOT_PLANNED_YET


def test_a_job_past_its_deadline_is_marked_missed(
    backend: LocalBackend, clock: SteppedClock
) -> None:
    clock.now = T0 + timedelta(hours=5)
    (row,) = jobs_page(backend).rows
    assert row.state == "expired" and row.trouble
    assert row.outlook.outlook is Outlook.MISSED and row.time_left == "passed 1 h 00 min ago"


def test_jobs_come_in_pages_in_job_id_order(backend: LocalBackend) -> None:
    for name in ("b", "c", "d"):
        backend.submit_job(job(name, 1))
    first = jobs_page(backend, limit=2)
    assert [row.job.job_id for row in first.rows] == ["b", "c"]
    assert first.next_after == "c" and first.total_jobs == 4
    last = jobs_page(backend, after=first.next_after, limit=2)
    assert [row.job.job_id for row in last.rows] == ["d", "embed-1"]
    assert last.next_after is None


def test_a_job_shows_each_shards_agreement_and_its_cars_trust(backend: LocalBackend) -> None:
    backend.submit_job(job("checked", 3, replicas=2))
    good = np.arange(4.0)
    finish(backend, "checked", 0, "car-001", good)
    finish(backend, "checked", 0, "car-002", good * 3)  # no quorum: a third replica is due
    assert backend.ledger.add_execution("checked", 0)
    finish(backend, "checked", 0, "car-003", good)
    finish(backend, "checked", 1, "car-001", good)
    backend.ledger.lease("checked", 2, "car-004", LEASE_END, "a-car-004")
    detail = job_detail(backend, "checked")
    assert detail.row.added == 1 and detail.row.accepted == 4 and detail.row.in_flight == 1
    first, second, third = detail.shards
    assert (first.state, first.agreement) == ("done", "2 agree, 1 dissent")
    assert [(car.trust.vehicle_id, car.role) for car in first.cars] == [
        ("car-001", "accepted"),
        ("car-002", "dissenting"),
        ("car-003", "accepted"),
    ]
    liar = first.cars[1].trust
    assert liar.wrong == 1 and liar.suspect and not liar.quarantined
    assert first.cars[0].trust.valid == 1 and not first.cars[0].trust.suspect
    assert (second.state, second.agreement) == ("open", "waiting for replicas")
    assert (third.state, [car.role for car in third.cars]) == ("running", ["running"])
    assert detail.previous_first is None and detail.next_first is None


def test_a_big_job_shows_its_shards_a_page_at_a_time(backend: LocalBackend) -> None:
    backend.submit_job(job("big", SHARDS_PER_PAGE * 2 + 5))
    first = job_detail(backend, "big")
    assert len(first.shards) == SHARDS_PER_PAGE and first.next_first == SHARDS_PER_PAGE
    last = job_detail(backend, "big", 2 * SHARDS_PER_PAGE)
    assert [s.report.progress.shard_index for s in last.shards] == list(
        range(2 * SHARDS_PER_PAGE, 2 * SHARDS_PER_PAGE + 5)
    )
    assert last.previous_first == SHARDS_PER_PAGE and last.next_first is None


def test_an_unknown_job_is_refused(backend: LocalBackend) -> None:
    with pytest.raises(UnknownIdError):
        job_detail(backend, "no-such-job")


def test_the_submit_command_is_one_the_client_takes() -> None:
    args = build_parser().parse_args(shlex.split(submit_command("127.0.0.1:50051"))[1:])
    assert (args.action, args.target, args.replicas) == ("submit", "127.0.0.1:50051", 2)
    assert "--target HOST:PORT" in submit_command(None)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=12, seconds=30), "12 min"),
        (timedelta(hours=3, minutes=5), "3 h 05 min"),
        (timedelta(days=2, hours=3), "2 d 3 h"),
        (-timedelta(minutes=12), "passed 12 min ago"),
    ],
)
def test_time_left_reads_in_days_hours_and_minutes(delta: timedelta, text: str) -> None:
    assert time_left_text(delta) == text


def test_without_a_plan_or_once_cancelled_no_deadline_is_judged(
    backend: LocalBackend, clock: SteppedClock
) -> None:
    fresh = LocalBackend(SITES, SETTINGS, clock)
    fresh.submit_job(job("unplanned", 2))
    (row,) = jobs_page(fresh).rows
    assert row.outlook.outlook is Outlook.NO_PLAN and jobs_page(fresh).plan_revision is None
    backend.cancel_job("embed-1")
    (cancelled,) = jobs_page(backend).rows
    assert cancelled.outlook.outlook is Outlook.STOPPED and not cancelled.trouble
