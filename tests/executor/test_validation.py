"""Replica quorums within a tolerance, and BOINC-style trust in cars."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.validation import (
    QUARANTINE_ERROR_RATE,
    TRUSTED_MIN_VALID,
    Reliability,
    Tolerance,
    judge_replicas,
    outputs_agree,
)

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


def test_a_car_earns_trust_with_valid_results_and_loses_it_when_wrong() -> None:
    trust = Reliability()
    assert not trust.trusted("car-a") and trust.needs_check(["car-a"])
    for _ in range(TRUSTED_MIN_VALID + 30):
        trust.record("car-a", valid=True)
    assert trust.trusted("car-a") and not trust.needs_check(["car-a"])
    trust.record("car-a", valid=False)
    assert not trust.trusted("car-a")


def test_a_car_that_keeps_being_wrong_is_quarantined() -> None:
    trust = Reliability()
    while trust.error_rate("car-b") < QUARANTINE_ERROR_RATE:
        assert not trust.quarantined("car-b")
        trust.record("car-b", valid=False)
    assert trust.quarantined("car-b")


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
