"""Replica quorums within a tolerance, and BOINC-style trust in cars."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.errors import OutputError
from executor.validation import (
    INITIAL_ERROR_RATE,
    MAX_EXTRA_REPLICAS,
    QUARANTINE_ERROR_RATE,
    Check,
    Reliability,
    ReplicaValidator,
    ShardCheck,
    Tolerance,
    judge_replicas,
    outputs_agree,
)
from streams.messages import Result

GOOD = np.linspace(0.0, 1.0, 8, dtype=np.float32).reshape(2, 4)


def test_outputs_within_tolerance_agree_and_others_do_not() -> None:
    tolerance = Tolerance(rtol=1e-4, atol=1e-5)
    assert outputs_agree(GOOD, GOOD + 1e-6, tolerance)
    assert not outputs_agree(GOOD, GOOD + 1e-2, tolerance)
    assert not outputs_agree(GOOD, GOOD.reshape(4, 2), tolerance)
    assert not outputs_agree(GOOD, GOOD.astype(np.int32), tolerance)


def test_two_of_three_agreeing_form_a_quorum_and_the_third_dissents() -> None:
    verdict = judge_replicas({"car-a": GOOD, "car-b": GOOD + 1e-7, "car-c": GOOD * 2}, quorum=2)
    assert verdict.accepted
    assert verdict.agreeing == ("car-a", "car-b") and verdict.dissenting == ("car-c",)


def test_without_a_quorum_nobody_is_judged() -> None:
    verdict = judge_replicas({"car-a": GOOD, "car-b": GOOD * 2}, quorum=2)
    assert not verdict.accepted and verdict.dissenting == ()
    with pytest.raises(ValueError, match="quorum"):
        judge_replicas({"car-a": GOOD}, quorum=0)


def test_a_wrong_car_is_suspect_gets_less_work_and_earns_trust_back() -> None:
    trust = Reliability()
    assert not trust.suspect("car-a") and trust.shards_per_slot("car-a", 4) == 4
    trust.record("car-a", valid=False)
    assert trust.suspect("car-a")
    assert trust.shards_per_slot("car-a", 4) == 2 and trust.shards_per_slot("car-a", 1) == 1
    for _ in range(30):
        trust.record("car-a", valid=True)
    assert not trust.suspect("car-a") and trust.shards_per_slot("car-a", 4) == 4


def test_a_car_that_keeps_being_wrong_is_quarantined() -> None:
    trust = Reliability()
    while trust.error_rate("car-b") < QUARANTINE_ERROR_RATE:
        assert not trust.quarantined("car-b")
        trust.record("car-b", valid=False)
    assert trust.quarantined("car-b") and trust.shards_per_slot("car-b", 4) == 0


@given(st.lists(st.booleans(), max_size=200))
def test_error_rates_stay_between_zero_and_one(history: list[bool]) -> None:
    trust = Reliability()
    for valid in history:
        trust.record("car", valid=valid)
        assert 0.0 <= trust.error_rate("car") <= 1.0


@given(
    st.lists(st.sampled_from([0.0, 1.0, 2.0]), min_size=1, max_size=7),
    st.integers(min_value=1, max_value=4),
)
def test_a_verdict_splits_the_cars_and_its_group_really_agrees(
    offsets: list[float], quorum: int
) -> None:
    outputs = {f"car-{i}": GOOD + offset for i, offset in enumerate(offsets)}
    verdict = judge_replicas(outputs, quorum)
    if verdict.accepted:
        assert set(verdict.agreeing) | set(verdict.dissenting) == set(outputs)
        assert not set(verdict.agreeing) & set(verdict.dissenting)
        first = outputs[verdict.agreeing[0]]
        assert all(outputs_agree(outputs[v], first, Tolerance()) for v in verdict.agreeing)
        assert len(verdict.agreeing) == max(offsets.count(o) for o in set(offsets))


def done(vehicle: str, shard: int = 0) -> Result:
    return Result(
        work_id=f"w-{vehicle}-{shard}",
        assignment_id=f"a-{vehicle}",
        job_id="job-1",
        shard_index=shard,
        vehicle_id=vehicle,
        status="done",
        output_uri=f"out/{vehicle}/{shard}.npy",
        output_sha256="d" * 64,
        finished_at="2025-06-01T12:00:00Z",
    )


def validator(outputs: dict[str, np.ndarray]) -> ReplicaValidator:
    """Outputs by vehicle; a vehicle without one has an unreadable file."""

    def read(uri: str) -> np.ndarray:
        vehicle = uri.split("/")[1]
        if vehicle not in outputs:
            raise FileNotFoundError(uri)
        return outputs[vehicle]

    return ReplicaValidator(read)


def test_two_agreeing_replicas_validate_the_shard_and_earn_trust() -> None:
    v = validator({"a": GOOD, "b": GOOD + 1e-7})
    assert v.check(done("a"), replicas=2) is Check.WAIT
    assert v.canonical("job-1", 0) is None
    assert v.check(done("b"), replicas=2) is Check.VALID
    assert v.canonical("job-1", 0) == "a"
    assert v.reliability.hosts["a"].valid == v.reliability.hosts["b"].valid == 1


def test_disagreeing_replicas_call_a_tie_breaker_that_marks_the_wrong_car() -> None:
    v = validator({"a": GOOD, "liar": GOOD * 3, "c": GOOD})
    v.check(done("a"), replicas=2)
    assert v.check(done("liar"), replicas=2) is Check.ADD_REPLICA
    assert v.check(done("c"), replicas=2) is Check.VALID
    assert v.reliability.hosts["liar"].wrong == 1 and v.reliability.suspect("liar")
    assert not v.reliability.suspect("a")


def test_a_suspect_cars_lone_result_is_checked_by_another_car() -> None:
    v = validator({"liar": GOOD * 3, "b": GOOD, "c": GOOD})
    v.reliability.record("liar", valid=False)
    assert v.check(done("liar"), replicas=1) is Check.ADD_REPLICA
    assert v.check(done("b"), replicas=1) is Check.ADD_REPLICA  # one against one: no quorum
    assert v.check(done("c"), replicas=1) is Check.VALID
    assert v.canonical("job-1", 0) == "b" and v.reliability.hosts["liar"].wrong == 2
    ok = validator({"a": GOOD})
    assert ok.check(done("a"), replicas=1) is Check.VALID  # an unsuspected lone result stands


def test_replicas_that_never_agree_make_the_shard_unverifiable() -> None:
    cars = [f"car-{i}" for i in range(2 + MAX_EXTRA_REPLICAS)]
    v = validator({car: GOOD * (i + 2) for i, car in enumerate(cars)})
    checks = [v.check(done(car), replicas=2) for car in cars]
    assert checks == [Check.WAIT] + [Check.ADD_REPLICA] * MAX_EXTRA_REPLICAS + [Check.UNVERIFIABLE]


def test_an_unreadable_output_counts_as_wrong_and_a_late_replica_is_scored() -> None:
    v = validator({"a": GOOD, "b": GOOD})
    assert v.check(done("gone"), replicas=3) is Check.WAIT
    assert v.check(done("a"), replicas=3) is Check.WAIT
    assert v.check(done("b"), replicas=3) is Check.VALID
    assert v.reliability.hosts["gone"].wrong == 1
    assert v.check(done("a", shard=1), replicas=1) is Check.VALID
    with pytest.raises(ValueError, match="only done"):
        v.check(done("a").model_copy(update={"status": "failed"}), replicas=1)


@pytest.mark.parametrize(
    ("same", "other"),
    [
        (np.array(["cat", "dog"]), np.array(["cat", "cow"])),
        (np.array([b"\x00a", b"b"]), np.array([b"\x00a", b"c"])),
        (np.array([True, False]), np.array([True, True])),
        (
            np.array(["2025-06-01T12:00", "NaT"], dtype="datetime64[m]"),
            np.array(["2025-06-01T12:01", "NaT"], dtype="datetime64[m]"),
        ),
        (
            np.array([5, "NaT"], dtype="timedelta64[s]"),
            np.array([6, "NaT"], dtype="timedelta64[s]"),
        ),
        (
            np.array([(1, "a")], dtype=[("n", "i4"), ("s", "U2")]),
            np.array([(1, "b")], dtype=[("n", "i4"), ("s", "U2")]),
        ),
    ],
    ids=["strings", "bytes", "bools", "datetimes", "timedeltas", "records"],
)
def test_non_numeric_outputs_agree_only_when_equal(same: np.ndarray, other: np.ndarray) -> None:
    loose = Tolerance(rtol=10.0, atol=10.0)  # would let every number agree
    assert outputs_agree(same, same.copy(), loose)
    assert not outputs_agree(same, other, loose)


def test_a_replicated_string_output_is_validated_not_raised_on() -> None:
    v = validator({"a": np.array(["cat"]), "b": np.array(["cat"]), "c": np.array(["dog"])})
    assert v.check(done("a"), replicas=3) is Check.WAIT
    assert v.check(done("c"), replicas=3) is Check.WAIT
    assert v.check(done("b"), replicas=3) is Check.VALID
    assert v.canonical("job-1", 0) == "a" and v.reliability.hosts["c"].wrong == 1


def test_outputs_read_beforehand_are_used_and_only_wanted_ones_are_read() -> None:
    v = validator({})  # its own reader finds nothing: every output comes with its result
    lone = done("lone", shard=1)
    assert not v.wants_output(lone, replicas=1)
    assert v.check(lone, replicas=1) is Check.VALID
    assert v.wants_output(done("a"), replicas=2)
    assert v.check(done("a"), 2, GOOD) is Check.WAIT
    assert v.check(done("bad"), 2, OutputError("output gone")) is Check.ADD_REPLICA
    assert v.check(done("b"), 2, GOOD) is Check.VALID
    assert v.wants_output(done("late"), replicas=2)  # scored against the accepted output
    assert v.check(done("late"), 2, GOOD * 2) is Check.VALID
    assert v.reliability.hosts["late"].wrong == v.reliability.hosts["bad"].wrong == 1


def test_a_shard_check_names_the_agreeing_and_dissenting_cars_and_their_trust() -> None:
    v = validator({"a": GOOD, "liar": GOOD * 3, "c": GOOD, "late": GOOD * 5})
    assert v.shard_check("job-1", 0) == ShardCheck()
    for car in ("a", "liar", "c"):
        v.check(done(car), replicas=2)
    v.check(done("late"), replicas=2)
    check = v.shard_check("job-1", 0)
    assert check == ShardCheck("a", ("a", "c"), ("liar", "late"))
    liar = v.reliability.trust("liar")
    assert (liar.wrong, liar.suspect, liar.quarantined) == (1, True, False)
    assert v.reliability.trust("new").error_rate == INITIAL_ERROR_RATE
