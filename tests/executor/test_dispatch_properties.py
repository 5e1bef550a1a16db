"""Hypothesis properties of the ledger and dispatcher under random dispatches and results.

A shadow model (what the test itself saw accepted) is compared against every assignment:
no (job, shard, vehicle) is accepted twice, no job exceeds shards * replicas, a vehicle is
never given a shard it ran or holds, and the ledger's counts always add up.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)

from executor.dispatch import Dispatcher, SlotDispatch
from executor.ledger import JobLedger
from streams.messages import Assignment, Job, Result, WorkItem
from tests.streams.factories import job, result

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)
VEHICLES = ["v0", "v1", "v2", "v3"]
JOBS = {"j0": (3, 1), "j1": (2, 3), "j2": (4, 2)}  # job_id -> (shards, replicas)


def make_job(job_id: str, shards: int, replicas: int) -> Job:
    """Open from T0 for 30 days: longer than any run of slots here."""
    return job(
        job_id,
        shards,
        replicas=replicas,
        submitted_at=T0,
        release=T0,
        deadline=T0 + timedelta(days=30),
        value_per_shard=1.0,
    )


plans = st.dictionaries(
    st.sampled_from(VEHICLES),
    st.dictionaries(st.sampled_from([*JOBS, "ghost"]), st.integers(0, 5), max_size=3),
    max_size=len(VEHICLES),
)


class LedgerMachine(RuleBasedStateMachine):
    work = Bundle("work")
    sent = Bundle("sent")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = JobLedger(max_failures_per_shard=3)
        self.dispatcher = Dispatcher(self.ledger, [make_job(j, s, r) for j, (s, r) in JOBS.items()])
        self.slot = 0
        self.accepted: Counter[tuple[str, int, str]] = Counter()
        self.issued_work_ids: set[str] = set()

    @rule(target=work, plan=plans)
    def dispatch(self, plan: dict[str, dict[str, int]]) -> object:
        start = T0 + self.slot * SLOT
        self.slot += 1
        held = {
            (lease.job_id, lease.shard_index, lease.vehicle_id) for lease in self.ledger.leases()
        }
        remaining = {j: self.ledger.executions_remaining(j) for j in JOBS}
        dispatches = [SlotDispatch(v, 1.0, counts) for v, counts in plan.items()]
        assignments = self.dispatcher.assignments_for_slot(dispatches, start, start + SLOT, "p")
        assert [a.vehicle_id for a in assignments] == list(plan)
        given_per_job: Counter[str] = Counter()
        for assignment in assignments:
            per_job = Counter(item.job_id for item in assignment.work)
            for item in assignment.work:
                triple = (item.job_id, item.shard_index, assignment.vehicle_id)
                assert self.accepted[triple] == 0, f"{triple} re-run by the vehicle that ran it"
                assert triple not in held, f"{triple} given to the vehicle holding it"
                held.add(triple)
                assert item.work_id not in self.issued_work_ids
                self.issued_work_ids.add(item.work_id)
            for job_id, count in per_job.items():
                assert count <= plan[assignment.vehicle_id][job_id]
                given_per_job[job_id] += count
            shards = [item.shard_index for item in assignment.work if item.job_id == "j0"]
            assert shards == sorted(shards)
        for job_id, count in given_per_job.items():
            assert count <= remaining[job_id]
        return multiple(*((a, item) for a in assignments for item in a.work))

    @rule(target=sent, pair=consumes(work), done=st.booleans())
    def report(self, pair: tuple[Assignment, WorkItem], done: bool) -> Result:
        assignment, item = pair
        reported = result(assignment, item, "done" if done else "failed")
        if self.ledger.accept(reported) and done:
            self.accepted[(item.job_id, item.shard_index, assignment.vehicle_id)] += 1
        return reported

    @rule(result=sent)
    def resend(self, result: Result) -> None:
        assert self.ledger.accept(result) is False

    @rule(pair=work)
    def forge(self, pair: tuple[Assignment, WorkItem]) -> None:
        assignment, item = pair
        forged = result(assignment, item, "done").model_copy(update={"work_id": "forged"})
        assert self.ledger.accept(forged) is False

    @rule(slots=st.integers(0, 3))
    def expire(self, slots: int) -> None:
        now = T0 + (self.slot - slots) * SLOT
        before = {lease.work_id for lease in self.ledger.leases()}
        expired = self.ledger.expire_leases(now)
        assert set(expired) <= before
        assert all(lease.lease_end > now for lease in self.ledger.leases())

    @invariant()
    def counts_add_up(self) -> None:
        assert all(count <= 1 for count in self.accepted.values())
        for job_id, (shards, replicas) in JOBS.items():
            progress = self.ledger.job_progress(job_id)
            mine = sum(c for (j, _, _), c in self.accepted.items() if j == job_id)
            assert progress.accepted == mine <= shards * replicas
            assert progress.in_flight == len(self.ledger.leases(job_id))
            assert progress.remaining >= 0
            assert progress.accepted + progress.in_flight + progress.remaining <= shards * replicas
            if not progress.abandoned_shards:
                assert progress.remaining == shards * replicas - mine - progress.in_flight
            for shard in range(shards):
                holders = [
                    lease.vehicle_id
                    for lease in self.ledger.leases(job_id)
                    if lease.shard_index == shard
                ]
                ran = self.ledger.accepted_vehicles(job_id, shard)
                assert len(holders) == len(set(holders)), "a vehicle holds a shard twice"
                assert not ran & set(holders), "a vehicle holds a shard it ran"
                assert len(ran) + len(holders) <= replicas


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
TestLedgerMachine = LedgerMachine.TestCase


@settings(max_examples=100)
@given(
    plans=st.lists(plans, min_size=1, max_size=12),
    fail_every=st.integers(2, 7),
)
def test_every_job_settles_once_vehicles_ask_for_enough(
    plans: list[dict[str, dict[str, int]]], fail_every: int
) -> None:
    """Random slots first, then every vehicle asks for everything until nothing is left:
    the ledger settles with each job either complete or with abandoned shards only."""
    ledger = JobLedger(max_failures_per_shard=3)
    dispatcher = Dispatcher(ledger, [make_job(j, s, r) for j, (s, r) in JOBS.items()])
    greedy = {v: dict.fromkeys(JOBS, 10) for v in VEHICLES}
    counter = 0
    for k, plan in enumerate([*plans, *[greedy] * 40]):
        start = T0 + k * SLOT
        dispatches = [SlotDispatch(v, 0.0, c) for v, c in plan.items()]
        for assignment in dispatcher.assignments_for_slot(dispatches, start, start + SLOT, "p"):
            for item in assignment.work:
                counter += 1
                status = "failed" if counter % fail_every == 0 else "done"
                ledger.accept(result(assignment, item, status))
        ledger.expire_leases(start + SLOT)
        if ledger.all_done():
            break
    assert ledger.all_done()
    for job_id, (shards, replicas) in JOBS.items():
        progress = ledger.job_progress(job_id)
        assert progress.accepted <= shards * replicas
        lost = len(progress.abandoned_shards) * replicas
        assert progress.accepted >= shards * replicas - lost
