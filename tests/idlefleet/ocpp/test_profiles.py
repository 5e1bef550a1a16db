"""Plans, caps and the default to charging profiles: within the EVSE, never above the plan,
and valid against the OCPP 2.0.1 and 1.6 schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, _validate_payload
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from idlefleet.ocpp.profiles import (
    CAP_PROFILE_ID,
    EvseLimits,
    ProfileError,
    Purpose,
    RateUnit,
    SlotPower,
    cap_schedule,
    default_schedule,
    plan_schedule,
    to_v16,
    to_v201,
    tx_profile_id,
)

T0 = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)
SLOT = timedelta(minutes=15)
AC11 = EvseLimits(max_power_kw=11.0, phases=3, voltage_v=230.0, unit=RateUnit.A)
DC50 = EvseLimits(max_power_kw=50.0, phases=3, unit=RateUnit.W, min_current_a=0.0)


def slots(*powers_kw: float, start: datetime = T0) -> list[SlotPower]:
    return [SlotPower(start + i * SLOT, start + (i + 1) * SLOT, p) for i, p in enumerate(powers_kw)]


def validate(payload: Any, version: str) -> None:
    """Raises unless the request is valid against the library's JSON schema."""
    body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
    _validate_payload(Call("1", type(payload).__name__, body), version)


def test_a_plan_in_watts_keeps_its_powers_and_merges_equal_slots() -> None:
    schedule = plan_schedule(slots(50.0, 50.0, 7.5, 80.0), DC50, now=T0)
    assert schedule.purpose is Purpose.TX and schedule.start == T0
    assert schedule.duration_s == 3600
    assert [(p.start_s, p.limit) for p in schedule.periods] == [
        (0, 50000.0),
        (1800, 7500.0),
        (2700, 50000.0),  # 80 kW planned, the EVSE gives 50
    ]


def test_a_plan_in_amperes_is_per_phase_and_rounded_down() -> None:
    schedule = plan_schedule(slots(11.0, 4.0, 5.0), AC11, now=T0)
    # 11 kW / (3 * 230 V) = 15.94 A; 4 kW is under the 6 A minimum (4.14 kW): a pause.
    assert [p.limit for p in schedule.periods] == [15.9, 0.0, 7.2]
    assert schedule.phases == 3


def test_only_the_remaining_slots_are_sent() -> None:
    schedule = plan_schedule(slots(1.0, 2.0, 3.0), DC50, now=T0 + SLOT + timedelta(minutes=1))
    assert schedule.start == T0 + SLOT
    assert [p.limit for p in schedule.periods] == [2000.0, 3000.0]


@pytest.mark.parametrize(
    "bad",
    [
        [],
        slots(1.0, start=T0 - 2 * SLOT),
        [SlotPower(T0, T0 + SLOT, 1.0), SlotPower(T0 + 2 * SLOT, T0 + 3 * SLOT, 1.0)],
        [SlotPower(T0.replace(tzinfo=None), T0.replace(tzinfo=None) + SLOT, 1.0)],
    ],
    ids=["empty", "all-past", "gap", "naive"],
)
def test_plans_that_cannot_become_a_profile_are_refused(bad: list[SlotPower]) -> None:
    with pytest.raises(ProfileError):
        plan_schedule(bad, DC50, now=T0)


def test_the_default_profile_is_full_power_without_end() -> None:
    schedule = default_schedule(AC11)
    assert schedule.purpose is Purpose.DEFAULT
    assert schedule.start is None and schedule.duration_s is None
    assert [p.limit for p in schedule.periods] == [15.9]


def test_a_cap_is_a_station_limit_at_or_under_it() -> None:
    schedule = cap_schedule(20.0, T0, T0 + timedelta(hours=1), AC11)
    assert schedule.purpose is Purpose.STATION_MAX
    assert schedule.limit_kw_at(T0, AC11) == pytest.approx(11.0, abs=0.1)  # the station's max
    cap = cap_schedule(7.0, T0, T0 + timedelta(hours=1), DC50)
    assert cap.limit_kw_at(T0 + timedelta(minutes=59), DC50) == 7.0
    assert cap.limit_kw_at(T0 + timedelta(hours=1), DC50) is None


@pytest.mark.parametrize("limits", [AC11, DC50], ids=["A", "W"])
def test_every_profile_is_valid_for_both_versions(limits: EvseLimits) -> None:
    plan = plan_schedule(slots(3.0, 11.0, 0.0), limits, now=T0)
    cap = cap_schedule(5.0, T0, T0 + SLOT, limits)
    default = default_schedule(limits)
    for schedule, profile_id, evse in (
        (plan, tx_profile_id(1), 1),
        (cap, CAP_PROFILE_ID, 0),
        (default, 1, 0),
    ):
        tx = "tx-1" if schedule.purpose is Purpose.TX else None
        validate(call201.SetChargingProfile(evse, to_v201(schedule, profile_id, tx)), "2.0.1")
        tx16 = 7 if schedule.purpose is Purpose.TX else None
        validate(call16.SetChargingProfile(evse, to_v16(schedule, profile_id, tx16)), "1.6")


limits_st = st.builds(
    EvseLimits,
    max_power_kw=st.floats(1.0, 350.0),
    phases=st.sampled_from([1, 3]),
    voltage_v=st.sampled_from([120.0, 230.0, 240.0]),
    unit=st.sampled_from(list(RateUnit)),
    min_current_a=st.sampled_from([0.0, 6.0]),
)


@given(
    limits=limits_st,
    powers=st.lists(st.floats(-5.0, 400.0), min_size=1, max_size=96),
    now_slot=st.integers(0, 95),
)
def test_a_profile_never_exceeds_the_plan_or_the_evse(
    limits: EvseLimits, powers: list[float], now_slot: int
) -> None:
    planned = slots(*powers)
    now = T0 + min(now_slot, len(powers) - 1) * SLOT
    schedule = plan_schedule(planned, limits, now=now)
    for slot in planned:
        if slot.end <= now:
            continue
        limit_kw = schedule.limit_kw_at(slot.start, limits)
        assert limit_kw is not None
        assert limit_kw <= max(slot.power_kw, 0.0) + 1e-9
        assert limit_kw <= limits.max_power_kw + 1e-9
        # What is lost to rounding is at most one 0.1 step (or the pause under the minimum).
        wanted = min(max(slot.power_kw, 0.0), limits.max_power_kw)
        if wanted >= limits.min_power_kw + 0.1:
            assert limit_kw >= wanted - limits.to_kw(0.1) - 1e-9
    assert schedule.limit_kw_at(planned[-1].end, limits) is None


@given(limits=limits_st, cap_kw=st.floats(0.0, 1000.0))
def test_a_cap_limit_is_never_above_the_cap(limits: EvseLimits, cap_kw: float) -> None:
    schedule = cap_schedule(cap_kw, T0, T0 + SLOT, limits)
    limit_kw = schedule.limit_kw_at(T0, limits)
    assert limit_kw is not None and limit_kw <= min(cap_kw, limits.max_power_kw) + 1e-9
