"""Fleet state derives the events the planner re-plans on, owners' changed wishes included."""

from __future__ import annotations

from datetime import timedelta

from streams.catalog import T0
from streams.state import FleetEventKind, FleetState
from tests.streams.factories import telemetry


def kinds(state: FleetState, minute: int, **changes: object) -> list[FleetEventKind]:
    """The events of car-1's report measured `minute` minutes after T0."""
    report = telemetry("car-1", event_time=T0 + timedelta(minutes=minute), **changes)
    return [event.kind for event in state.apply_telemetry(report)]


def test_an_owner_moving_the_departure_or_changing_reserve_or_target_is_an_event() -> None:
    state = FleetState()
    assert FleetEventKind.ARRIVED in kinds(state, 0)
    assert kinds(state, 1) == []  # a newer reading, nothing asked differently
    earlier = T0 + timedelta(hours=1)
    assert kinds(state, 2, expected_departure=earlier) == [FleetEventKind.WISHES_CHANGED]
    assert kinds(state, 3, expected_departure=earlier, reserve_kwh=30.0) == [
        FleetEventKind.WISHES_CHANGED
    ]
    assert kinds(state, 4, expected_departure=earlier, reserve_kwh=30.0) == []


def test_a_late_report_changes_nothing() -> None:
    state = FleetState()
    kinds(state, 10)
    assert kinds(state, 5, target_kwh=10.0) == []
