"""A planned power below an EVSE's least current, carried out at that current for part of
the slot where the site has room, never over a limit."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from idlefleet.ocpp.plans import Headroom, least_power, planned_slots
from idlefleet.ocpp.profiles import SlotPower
from optimizer import DrEvent, Horizon, Region, Scenario, Site, Vehicle, plan_scenario
from optimizer.plan import PlanSnapshot

T0 = datetime(2020, 6, 1, 12, tzinfo=UTC)
SLOT = timedelta(minutes=15)
LEAST_KW = 4.14


def snapshot(limit_kw: float, cap_kw: float | None = None, need_kwh: float = 2.0) -> PlanSnapshot:
    """One car at one site that needs `need_kwh` [kWh] within the hour: a small power."""
    horizon = Horizon(start=T0, slot_minutes=15, slots=4)
    scenario = Scenario(
        horizon=horizon,
        carbon_price_per_tonne=100.0,
        regions=(Region("DE", (300.0,) * 4, (0.0,) * 4),),
        sites=(Site("depot", "DE", limit_kw, (0.0,) * 4),),
        vehicles=(
            Vehicle(
                id="car-1",
                site="depot",
                arrival=T0,
                departure=T0 + 4 * SLOT,
                battery_kwh=60.0,
                soc_kwh=30.0,
                target_kwh=30.0 + need_kwh,
                compute_kw=0.3,
                charger_kw=11.0,
                charge_efficiency_frac=1.0,
            ),
        ),
        dr_events=()
        if cap_kw is None
        else (DrEvent("cap", T0, T0 + 4 * SLOT, cap_kw, site="depot"),),
    )
    return PlanSnapshot(plan_scenario(scenario, "milp"), scenario)


def energy_kwh(slots: list) -> float:
    return sum(s.power_kw * (s.end - s.start) / timedelta(hours=1) for s in slots)


def slots_of(*powers_kw: float) -> list[SlotPower]:
    return [SlotPower(T0 + i * SLOT, T0 + (i + 1) * SLOT, p) for i, p in enumerate(powers_kw)]


def test_a_small_power_becomes_the_least_power_for_part_of_the_slot() -> None:
    plan = snapshot(limit_kw=50.0)
    assert planned_slots(plan, "car-1") is not None
    slots = slots_of(1.0, 6.0, 0.0, 2.0)
    carried = least_power(slots, LEAST_KW, "depot", Headroom(plan))
    assert [s.power_kw for s in carried] == [LEAST_KW, 0.0, 6.0, 0.0, LEAST_KW, 0.0]
    # The same energy, rounded up to a whole second at the least power.
    assert energy_kwh(slots) <= energy_kwh(carried) <= energy_kwh(slots) + 0.01
    assert carried[0].start == slots[0].start and carried[-1].end == slots[-1].end
    assert all(a.end == b.start for a, b in itertools.pairwise(carried))


def test_without_room_under_the_cap_the_station_pauses_instead() -> None:
    plan = snapshot(limit_kw=50.0, cap_kw=2.0)  # a DR cap below the least power
    slots = slots_of(1.0, 1.0, 1.0, 1.0)
    assert least_power(slots, LEAST_KW, "depot", Headroom(plan)) == slots


@settings(deadline=None, max_examples=30)  # each example solves a small MILP
@given(powers=st.lists(st.floats(0.0, 11.0), min_size=4, max_size=4))
def test_headroom_is_never_taken_twice(powers: list[float]) -> None:
    plan = snapshot(limit_kw=6.0)
    room = Headroom(plan)
    slots = [
        type(s)(s.start, s.end, p)
        for s, p in zip(planned_slots(plan, "car-1") or [], powers, strict=True)
    ]
    taken = [0.0] * 4
    for _ in range(3):  # three cars' sessions draw on the same site's room
        carried = least_power(slots, LEAST_KW, "depot", room)
        for index, slot in enumerate(slots):
            parts = [c for c in carried if slot.start <= c.start < slot.end]
            if len(parts) == 2 and parts[0].power_kw == LEAST_KW:
                taken[index] += LEAST_KW - slot.power_kw
    limit = 6.0
    for index in range(4):
        planned_import = plan.plan.grid_import_kw["depot"][index]
        assert planned_import + taken[index] <= limit + 1e-9
