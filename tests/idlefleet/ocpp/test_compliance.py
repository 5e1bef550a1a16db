"""A station is uncontrollable after N consecutive samples over its limit, or a rejection."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from idlefleet.ocpp.compliance import Compliance, ComplianceRule

RULE = ComplianceRule(tolerance_kw=0.5, tolerance_frac=0.05, samples=3)


def test_three_samples_over_in_a_row_make_it_uncontrollable() -> None:
    record = Compliance(RULE)
    assert record.observe(11.0, 5.0) and record.observe(11.0, 5.0)
    assert not record.observe(11.0, 5.0)
    assert record.reason is not None and "11.00 kW" in record.reason
    assert not record.observe(0.0, 5.0)  # it stays so


def test_a_sample_within_the_limit_starts_the_count_again() -> None:
    record = Compliance(RULE)
    for power_kw in (11.0, 11.0, 5.0, 11.0, 11.0, 5.4, None):
        if power_kw is not None:
            assert record.observe(power_kw, 5.0)
    assert record.observe(11.0, None)  # no limit in force: full power is allowed


def test_a_rejected_profile_makes_it_uncontrollable_until_reset() -> None:
    record = Compliance(RULE)
    record.rejected("TxProfile")
    assert not record.controllable and record.reason == "rejected TxProfile"
    record.reset()
    assert record.controllable and record.observe(11.0, 5.0)


@given(
    samples=st.lists(st.tuples(st.floats(0, 50), st.floats(0, 50)), max_size=30),
)
def test_following_the_limit_within_tolerance_never_marks_it(
    samples: list[tuple[float, float]],
) -> None:
    record = Compliance(RULE)
    for fraction, limit_kw in samples:
        power_kw = min(fraction, limit_kw + RULE.tolerance_kw)
        assert record.observe(power_kw, limit_kw)
