"""The ledger and the dispatcher on small, hand-checked scenarios."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from executor.dispatch import Dispatcher, SlotDispatch
from executor.ledger import JobLedger, stable_id
from streams.catalog import MODEL
from streams.messages import Assignment, Job
from tests.streams.factories import job as catalog_job
from tests.streams.factories import result

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def job(job_id: str = "job-1", shards: int = 3, replicas: int = 1, **changes: object) -> Job:
    """Open from an hour before T0 until a day after."""
    window: dict[str, object] = {
        "submitted_at": T0 - timedelta(hours=1),
        "release": T0 - timedelta(hours=1),
        "deadline": T0 + timedelta(days=1),
        "value_per_shard": 1.0,
    }
    return catalog_job(job_id, shards, replicas=replicas, **{**window, **changes})


def slot(k: int) -> tuple[datetime, datetime]:
    return T0 + k * SLOT, T0 + (k + 1) * SLOT


def dispatch(
    dispatcher: Dispatcher, plan: dict[str, dict[str, int]], k: int = 0, plan_id: str = "plan-1"
) -> dict[str, Assignment]:
    start, end = slot(k)
    dispatches = [SlotDispatch(vid, 7.0, counts) for vid, counts in plan.items()]
    return {
        a.vehicle_id: a for a in dispatcher.assignments_for_slot(dispatches, start, end, plan_id)
    }


def shards_of(assignment: Assignment) -> list[int]:
    return [item.shard_index for item in assignment.work]


def test_registration_is_idempotent_on_job_id() -> None:
    ledger = JobLedger()
    assert ledger.register(job()) is True
    assert ledger.register(job()) is False
    assert ledger.register(job(shards=9)) is False  # first registration wins
    assert ledger.executions_remaining("job-1") == 3
    assert ledger.job_ids == ["job-1"]


def test_lowest_shards_first_never_more_than_outstanding() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=3)])
    got = dispatch(dispatcher, {"car-a": {"job-1": 2}, "car-b": {"job-1": 5}})
    assert shards_of(got["car-a"]) == [0, 1]
    assert shards_of(got["car-b"]) == [2]
    assert ledger.executions_remaining("job-1") == 0


def test_replicas_land_on_distinct_vehicles() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=2, replicas=2)])
    got = dispatch(dispatcher, {"a": {"job-1": 5}, "b": {"job-1": 5}, "c": {"job-1": 5}})
    assert shards_of(got["a"]) == [0, 1]
    assert shards_of(got["b"]) == [0, 1]
    assert shards_of(got["c"]) == []  # both replicas of both shards are out already


def test_every_vehicle_gets_an_assignment_even_without_work() -> None:
    dispatcher = Dispatcher(JobLedger(), [job()])
    got = dispatch(dispatcher, {"a": {}, "b": {"job-1": 0}, "c": {"unknown-job": 2}})
    assert set(got) == {"a", "b", "c"}
    assert all(a.work == [] and a.charge_power_kw == 7.0 for a in got.values())
    assert got["a"].slot_start == T0 and got["a"].plan_id == "plan-1"


def test_ids_are_deterministic_and_distinct() -> None:
    def run() -> list[Assignment]:
        dispatcher = Dispatcher(JobLedger(), [job(replicas=2)])
        return list(dispatch(dispatcher, {"a": {"job-1": 3}, "b": {"job-1": 3}}).values())

    first, second = run(), run()
    assert first == second
    work_ids = [item.work_id for a in first for item in a.work]
    assert len(set(work_ids)) == len(work_ids) == 6
    assert len({a.assignment_id for a in first}) == 2
    assert first[0].work[0].work_id.startswith("job-1:0:a:0-")


def test_stable_ids_do_not_collide_on_separator_tricks_and_stay_short() -> None:
    assert stable_id("j/1/v", 2, "w", 0) != stable_id("j", 1, "v/2/w", 0)
    assert len(stable_id("x" * 200, 0, "y" * 200, 0)) <= 200


def test_work_items_carry_the_jobs_model_input_and_output() -> None:
    dispatcher = Dispatcher(JobLedger(), [job()])
    (item,) = dispatch(dispatcher, {"a": {"job-1": 1}})["a"].work
    assert (item.model, item.input_uri, item.output_uri) == (
        MODEL,
        "file:///srv/in/job-1/0.npy",
        "file:///srv/out/job-1",
    )


def test_duplicate_results_are_dropped() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=1)])
    assignment = dispatch(dispatcher, {"a": {"job-1": 1}})["a"]
    done = result(assignment, assignment.work[0])
    assert ledger.accept(done) is True
    assert ledger.accept(done) is False
    assert ledger.job_progress("job-1").accepted == 1
    assert ledger.all_done()


def test_done_result_for_unknown_or_mismatched_work_is_refused() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=2)])
    assignment = dispatch(dispatcher, {"a": {"job-1": 2}})["a"]
    genuine = result(assignment, assignment.work[0])
    assert ledger.accept(genuine.model_copy(update={"work_id": "made-up"})) is False
    assert ledger.accept(genuine.model_copy(update={"vehicle_id": "b"})) is False
    assert ledger.accept(genuine.model_copy(update={"shard_index": 1})) is False
    assert ledger.job_progress("job-1").accepted == 0
    assert ledger.accept(genuine) is True


def test_a_failed_result_frees_the_work_for_reassignment() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=2)])
    first = dispatch(dispatcher, {"a": {"job-1": 2}})["a"]
    assert ledger.accept(result(first, first.work[0], "failed")) is True
    assert ledger.executions_remaining("job-1") == 1
    retry = dispatch(dispatcher, {"b": {"job-1": 2}}, k=1)["b"]
    assert shards_of(retry) == [0]
    assert ledger.job_progress("job-1").failed_results == 1


def test_the_same_vehicle_may_retry_a_shard_it_failed_under_a_new_work_id() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=1)])
    first = dispatch(dispatcher, {"a": {"job-1": 1}})["a"]
    ledger.accept(result(first, first.work[0], "failed"))
    retry = dispatch(dispatcher, {"a": {"job-1": 1}}, k=1)["a"]
    assert shards_of(retry) == [0]
    assert retry.work[0].work_id != first.work[0].work_id
    assert ledger.accept(result(first, first.work[0], "failed")) is False  # old work is settled


def test_expired_leases_are_freed_and_reassigned_and_late_results_refused() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=2)])
    first = dispatch(dispatcher, {"a": {"job-1": 2}})["a"]
    assert ledger.expire_leases(first.slot_end - timedelta(seconds=1)) == []
    expired = ledger.expire_leases(first.slot_end)
    assert expired == [item.work_id for item in first.work]
    assert ledger.executions_remaining("job-1") == 2
    assert ledger.accept(result(first, first.work[0])) is False  # too late: the lease is gone
    again = dispatch(dispatcher, {"b": {"job-1": 2}}, k=1)["b"]
    assert shards_of(again) == [0, 1]


def test_lease_grace_extends_the_lease_past_the_slot() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=1)], lease_grace=timedelta(minutes=5))
    first = dispatch(dispatcher, {"a": {"job-1": 1}})["a"]
    assert ledger.expire_leases(first.slot_end) == []
    assert ledger.accept(result(first, first.work[0])) is True


def test_a_vehicle_never_reruns_a_shard_it_completed() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=2, replicas=2)])
    first = dispatch(dispatcher, {"a": {"job-1": 1}})["a"]
    ledger.accept(result(first, first.work[0]))
    second = dispatch(dispatcher, {"a": {"job-1": 5}}, k=1)["a"]
    assert shards_of(second) == [1]  # shard 0 still needs a replica, but not from "a"
    assert ledger.accepted_vehicles("job-1", 0) == frozenset({"a"})


def test_a_poison_shard_is_abandoned_after_repeated_failures() -> None:
    ledger = JobLedger(max_failures_per_shard=2)
    dispatcher = Dispatcher(ledger, [job(shards=2)])
    for k, vehicle in enumerate(["a", "b"]):
        got = dispatch(dispatcher, {vehicle: {"job-1": 2}}, k=k)[vehicle]
        assert got.work[0].shard_index == 0
        ledger.accept(result(got, got.work[0], "failed"))
        if len(got.work) > 1:
            ledger.accept(result(got, got.work[1]))
    progress = ledger.job_progress("job-1")
    assert progress.abandoned_shards == (0,)
    assert (progress.accepted, progress.remaining, progress.in_flight) == (1, 0, 0)
    assert progress.settled and not progress.complete
    assert ledger.all_done()
    assert dispatch(dispatcher, {"c": {"job-1": 2}}, k=2)["c"].work == []


def test_failures_that_are_the_cars_never_give_a_shard_up() -> None:
    # a car that left, is at reserve or was superseded: the shard simply runs again
    ledger = JobLedger(max_failures_per_shard=2)
    dispatcher = Dispatcher(ledger, [job(shards=1)])
    for k, vehicle in enumerate(["a", "b", "c"]):
        got = dispatch(dispatcher, {vehicle: {"job-1": 1}}, k=k)[vehicle]
        failed = result(got, got.work[0], "failed").model_copy(update={"fault": "car"})
        assert ledger.accept(failed)
    progress = ledger.job_progress("job-1")
    assert progress.abandoned_shards == () and progress.remaining == 1
    assert progress.failed_results == 3


def test_progress_and_all_done_follow_the_results() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job("j1", shards=2), job("j2", shards=1, replicas=2)])
    got = dispatch(dispatcher, {"a": {"j1": 2, "j2": 1}, "b": {"j2": 1}})
    assert not ledger.all_done()
    assert ledger.job_progress("j2").in_flight == 2
    for assignment in got.values():
        for index in range(len(assignment.work)):
            assert ledger.accept(result(assignment, assignment.work[index]))
    assert ledger.job_progress("j1").complete and ledger.job_progress("j2").complete
    assert ledger.all_done()


def test_jobs_outside_their_window_get_no_work() -> None:
    early = job("early", release=T0 + timedelta(hours=2), deadline=T0 + timedelta(hours=3))
    late = job("late", release=T0 - timedelta(hours=3), deadline=T0)
    dispatcher = Dispatcher(JobLedger(), [early, late])
    assert dispatch(dispatcher, {"a": {"early": 1, "late": 1}})["a"].work == []


def test_bad_slot_calls_are_refused_without_leasing_anything() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job()])
    start, end = slot(0)
    one = [SlotDispatch("a", 1.0, {"job-1": 1})]
    with pytest.raises(ValueError, match="timezone-aware"):
        dispatcher.assignments_for_slot(one, start.replace(tzinfo=None), end, "p")
    with pytest.raises(ValueError, match="after slot_start"):
        dispatcher.assignments_for_slot(one, end, start, "p")
    with pytest.raises(ValueError, match="twice"):
        dispatcher.assignments_for_slot(one * 2, start, end, "p")
    with pytest.raises(ValueError):  # pydantic: not an Identifier
        dispatcher.assignments_for_slot(
            [*one, SlotDispatch("bad id", 1.0, {"job-1": 1})], start, end, "p"
        )
    assert ledger.leases() == []
    with pytest.raises(ValueError, match="charge_power_kw"):
        SlotDispatch("a", -1.0, {})
    with pytest.raises(ValueError, match="int >= 0"):
        SlotDispatch("a", 1.0, {"job-1": -2})
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.expire_leases(datetime(2025, 1, 1))  # noqa: DTZ001


def test_a_car_that_leaves_gives_its_work_back_and_a_late_result_is_refused() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=2)])
    first = dispatch(dispatcher, {"a": {"job-1": 2}})["a"]
    assert ledger.release_vehicle("a") == [item.work_id for item in first.work]
    assert ledger.release_vehicle("a") == []
    assert ledger.executions_remaining("job-1") == 2
    assert ledger.accept(result(first, first.work[0])) is False
    assert shards_of(dispatch(dispatcher, {"b": {"job-1": 2}}, k=1)["b"]) == [0, 1]


def test_validation_can_add_an_execution_to_a_shard_and_give_one_up() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=2)])
    first = dispatch(dispatcher, {"a": {"job-1": 2}})["a"]
    for index in range(2):
        ledger.accept(result(first, first.work[index]))
    assert ledger.job_progress("job-1").complete
    assert ledger.add_execution("job-1", 1) is True
    progress = ledger.job_progress("job-1")
    assert (progress.total, progress.remaining) == (3, 1)
    check = dispatch(dispatcher, {"a": {"job-1": 1}, "b": {"job-1": 1}}, k=1)
    assert check["a"].work == [] and shards_of(check["b"]) == [1]  # never the same car
    ledger.abandon_shard("job-1", 1, "replicas disagree")
    assert ledger.add_execution("job-1", 1) is False
    assert ledger.job_progress("job-1").abandoned_shards == (1,)
    assert ledger.accept(result(check["b"], check["b"].work[0])) is True
    assert ledger.all_done()
    with pytest.raises(ValueError, match="no shard 7"):
        ledger.add_execution("job-1", 7)


def test_an_assignment_carries_at_most_max_work_items_and_the_rest_waits() -> None:
    from executor.dispatch import MAX_WORK_ITEMS
    from streams.serde import MAX_MESSAGE_BYTES, encode

    long_uri = "/" + "d" * 1990 + ".npy"
    big = job("big", shards=MAX_WORK_ITEMS + 5, input_uris=[long_uri] * (MAX_WORK_ITEMS + 5))
    big = big.model_copy(
        update={"output_uri": long_uri, "model": MODEL.model_copy(update={"uri": long_uri})}
    )
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [big])
    [assignment] = dispatcher.assignments_for_slot(
        [SlotDispatch("a", 0.0, {"big": MAX_WORK_ITEMS + 5})], *slot(0), "plan-1"
    )
    assert len(assignment.work) == MAX_WORK_ITEMS
    assert len(encode(assignment)) < MAX_MESSAGE_BYTES
    assert ledger.executions_remaining("big") == 5


def test_assignments_carry_the_plan_revision() -> None:
    dispatcher = Dispatcher(JobLedger(), [job(shards=2)])
    start, end = slot(0)
    dispatches = [SlotDispatch("car-1", 7.0, {"job-1": 1}), SlotDispatch("car-2", 3.0)]
    revised = dispatcher.assignments_for_slot(dispatches, start, end, "plan-r", 1_717_243_200_000)
    assert [a.plan_revision for a in revised] == [1_717_243_200_000] * 2
    [unrevised] = dispatcher.assignments_for_slot(dispatches[1:], start, end, "plan-0")
    assert unrevised.plan_revision == 0


def test_shard_progress_names_the_cars_of_each_shard_in_a_window() -> None:
    ledger = JobLedger()
    dispatcher = Dispatcher(ledger, [job(shards=3, replicas=2)])
    sent = dispatch(dispatcher, {"a": {"job-1": 2}, "b": {"job-1": 1}})
    ledger.accept(result(sent["a"], sent["a"].work[0], "done"))
    ledger.accept(result(sent["b"], sent["b"].work[0], "failed"))
    ledger.add_execution("job-1", 1)
    first, second = ledger.shard_progress("job-1", 0, 2)
    assert (first.accepted, first.in_flight, first.failures, first.wanted) == (("a",), (), 1, 2)
    assert (second.accepted, second.in_flight, second.wanted) == ((), ("a",), 3)
    assert [p.shard_index for p in ledger.shard_progress("job-1", 2, 100)] == [2]
    assert ledger.shard_progress("job-1", 5, 10) == []
