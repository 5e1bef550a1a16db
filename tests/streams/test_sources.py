"""A car's three sources merged: what the planner sees, what it lacks, and energy estimated
from metered energy when no SoC is read."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.catalog import T0
from streams.messages import ConsentRules, MeasuredState, OwnerPreferences, VehicleRecord
from streams.sources import VehicleSources, split_telemetry
from streams.state import FleetEventKind, FleetState
from tests.streams.factories import telemetry

RECORD = VehicleRecord(
    vehicle_id="car-1",
    updated_at=T0,
    battery_kwh=60.0,
    charger_kw=11.0,
    charge_efficiency_frac=0.9,
    compute_kw=0.3,
    home_site_id="berlin-depot",
)
PREFERENCES = OwnerPreferences(
    vehicle_id="car-1",
    updated_at=T0,
    reserve_kwh=10.0,
    target_kwh=50.0,
    expected_departure=T0 + timedelta(hours=8),
)


def measured(minute: float, **fields: object) -> MeasuredState:
    return MeasuredState(
        vehicle_id="car-1",
        event_time=T0 + timedelta(minutes=minute),
        source="ocpp:cs-1/1",
        **fields,
    )


def parked(minute: float = 0, **fields: object) -> MeasuredState:
    return measured(minute, site_id="berlin-depot", plugged_in=True, **fields)


def car(
    *records: MeasuredState, preferences: OwnerPreferences | None = PREFERENCES
) -> VehicleSources:
    sources = VehicleSources("car-1")
    sources.apply_record(RECORD)
    if preferences is not None:
        sources.apply_preferences(preferences)
    for record in records:
        sources.apply_measured(record)
    return sources


def test_three_sources_make_the_view_the_planner_plans_with() -> None:
    view = car(parked(soc_frac=0.5)).view()
    assert view is not None
    assert view.site_id == "berlin-depot" and view.plugged_in
    assert view.energy_kwh == 30.0  # 50 % of the registry's 60 kWh
    assert (view.reserve_kwh, view.target_kwh) == (10.0, 50.0)
    assert view.expected_departure == T0 + timedelta(hours=8)
    assert (view.charger_kw, view.compute_kw, view.battery_kwh) == (11.0, 0.3, 60.0)
    assert view.participating


def test_each_missing_source_is_named_and_a_car_without_registry_or_energy_is_not_planned() -> None:
    nothing = VehicleSources("car-1")
    nothing.apply_measured(parked())
    assert nothing.view() is None
    assert nothing.lacks() == [
        "fleet registry entry (battery, charger, compute)",
        "energy reading since it arrived",
        "owner preferences (no consent to compute, no departure)",
    ]
    no_energy = car(parked())
    assert no_energy.view() is None
    assert no_energy.note().energy_source == "unknown"


def test_without_preferences_a_car_is_charged_but_never_computes() -> None:
    sources = car(parked(energy_kwh=20.0), preferences=None)
    view = sources.view()
    assert view is not None
    assert not view.participating
    assert view.target_kwh == 20.0 and view.expected_departure is None
    assert sources.note().lacks == ("owner preferences (no consent to compute, no departure)",)


def test_energy_is_estimated_from_metered_energy_after_the_last_reading() -> None:
    sources = car(
        parked(0, soc_frac=0.5, session_id="tx-1", session_energy_kwh=2.0),
        measured(30, session_id="tx-1", session_energy_kwh=7.0),
    )
    energy_kwh, source, metered_kwh = sources.energy()
    assert source == "estimated"
    assert metered_kwh == 5.0  # metered since the reading, not since the session began
    assert energy_kwh == 30.0 + 5.0 * 0.9
    note = sources.note()
    assert note.energy_read_at == T0 and note.metered_since_kwh == 5.0


def test_a_new_reading_resets_the_estimate() -> None:
    sources = car(
        parked(0, soc_frac=0.5, session_id="tx-1", session_energy_kwh=0.0),
        measured(30, session_id="tx-1", session_energy_kwh=5.0),
        measured(31, energy_kwh=36.0),
    )
    assert sources.energy() == (36.0, "reading", 0.0)


def test_the_estimate_never_passes_the_battery() -> None:
    sources = car(
        parked(0, soc_frac=0.9, session_id="tx-1", session_energy_kwh=0.0),
        measured(300, session_id="tx-1", session_energy_kwh=80.0),
    )
    assert sources.energy()[0] == 60.0


def test_a_reading_from_before_the_drive_here_is_not_carried_over() -> None:
    sources = car(measured(0, away=True, energy_kwh=40.0), parked(60))
    assert sources.energy()[0] is None
    assert sources.view() is None
    sources.apply_measured(measured(61, energy_kwh=35.0))
    assert sources.view() is not None


def test_a_session_metered_from_before_a_reading_in_another_session_starts_at_zero() -> None:
    sources = car(
        parked(0, energy_kwh=20.0),
        measured(10, session_id="tx-2", session_energy_kwh=4.0),
    )
    assert sources.energy() == (20.0 + 4.0 * 0.9, "estimated", 4.0)


def test_older_fields_never_roll_newer_ones_back() -> None:
    sources = car(parked(10, energy_kwh=30.0), measured(5, plugged_in=False, energy_kwh=10.0))
    view = sources.view()
    assert view is not None and view.plugged_in and view.energy_kwh == 30.0


def test_consent_rules_are_compiled_into_the_view() -> None:
    rules = ConsentRules(only_at_sites=["home"], min_soc_frac=0.6)
    prefs = PREFERENCES.model_copy(update={"rules": rules})
    view = car(parked(energy_kwh=40.0), preferences=prefs).view()
    assert view is not None
    assert not view.participating  # at the depot, not at home
    assert view.reserve_kwh == 36.0  # never below 60 % of 60 kWh
    assert view.target_kwh == 50.0


def test_a_charger_that_does_not_follow_profiles_is_uncontrolled_load() -> None:
    sources = car(parked(energy_kwh=30.0))
    assert sources.uncontrolled_kw() == 0.0
    sources.apply_measured(measured(1, controllable=False))
    assert sources.uncontrolled_kw() == 11.0
    assert not sources.note().controllable


def test_a_plugged_in_car_that_cannot_be_planned_counts_at_full_power() -> None:
    unplannable = VehicleSources("car-1")
    unplannable.apply_measured(parked(power_kw=7.4))
    assert unplannable.uncontrolled_kw() == 7.4  # no registry: what its charger meters
    assert car(parked()).uncontrolled_kw() == 11.0  # no energy: the registry's charger


@given(
    soc=st.floats(0.0, 1.0),
    metered=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=8),
)
def test_estimates_stay_within_the_battery_and_grow_with_the_meter(
    soc: float, metered: list[float]
) -> None:
    sources = car(parked(0, soc_frac=soc, session_id="tx", session_energy_kwh=0.0))
    previous = sources.energy()[0]
    for minute, kwh in enumerate(sorted(metered), start=1):
        sources.apply_measured(measured(minute, session_id="tx", session_energy_kwh=kwh))
        energy_kwh = sources.energy()[0]
        assert energy_kwh is not None and previous is not None
        assert 0.0 <= energy_kwh <= RECORD.battery_kwh
        assert energy_kwh >= previous - 1e-9
        previous = energy_kwh


def test_split_telemetry_gives_back_the_same_view() -> None:
    report = telemetry("car-1", event_time=T0)
    sources = VehicleSources("car-1")
    for_record, for_preferences, for_measured = split_telemetry(report)[::-1]
    sources.apply_record(for_record)
    sources.apply_preferences(for_preferences)
    sources.apply_measured(for_measured)
    view = sources.view()
    assert view is not None
    assert view.model_dump(exclude={"shards_per_slot"}) == report.model_dump(
        exclude={"shards_per_slot"}
    )


class TestFleetState:
    def test_a_car_appears_when_its_sources_say_enough_and_arrives(self) -> None:
        state = FleetState()
        assert state.apply_measured(parked(0, energy_kwh=30.0)) == []  # no registry entry
        kinds = [e.kind for e in state.apply_record(RECORD)]
        assert kinds == [FleetEventKind.ARRIVED, FleetEventKind.PLUGGED_IN]
        assert not state.vehicles["car-1"].participating  # no preferences: no compute
        kinds = [e.kind for e in state.apply_preferences(PREFERENCES)]
        assert kinds == [FleetEventKind.CONSENT_GIVEN, FleetEventKind.WISHES_CHANGED]
        assert state.vehicles["car-1"].participating

    def test_first_record_completes_the_view_with_arrival_events(self) -> None:
        state = FleetState()
        state.apply_record(RECORD)
        state.apply_preferences(PREFERENCES)
        kinds = [e.kind for e in state.apply_measured(parked(0, energy_kwh=30.0))]
        assert kinds == [FleetEventKind.ARRIVED, FleetEventKind.PLUGGED_IN]
        assert "car-1" in state.arrivals

    def test_preferences_registry_and_control_changes_are_events(self) -> None:
        state = FleetState()
        state.apply_record(RECORD)
        state.apply_preferences(PREFERENCES)
        state.apply_measured(parked(0, energy_kwh=30.0))
        later = PREFERENCES.model_copy(
            update={"updated_at": T0 + timedelta(minutes=1), "reserve_kwh": 20.0}
        )
        assert [e.kind for e in state.apply_preferences(later)] == [FleetEventKind.WISHES_CHANGED]
        rules = later.model_copy(
            update={
                "updated_at": T0 + timedelta(minutes=2),
                "rules": ConsentRules(solar_surplus_only=True),
            }
        )
        assert [e.kind for e in state.apply_preferences(rules)] == [FleetEventKind.RULES_CHANGED]
        bigger = RECORD.model_copy(
            update={"updated_at": T0 + timedelta(minutes=3), "charger_kw": 22.0}
        )
        assert [e.kind for e in state.apply_record(bigger)] == [FleetEventKind.REGISTRY_CHANGED]
        lost = measured(4, controllable=False)
        assert [e.kind for e in state.apply_measured(lost)] == [FleetEventKind.CONTROL_CHANGED]
        assert not state.controllable("car-1")
        assert state.uncontrolled_kw() == {"berlin-depot": 22.0}

    def test_a_retired_car_departs(self) -> None:
        state = FleetState()
        state.apply_record(RECORD)
        state.apply_preferences(PREFERENCES)
        state.apply_measured(parked(0, energy_kwh=30.0))
        retired = RECORD.model_copy(
            update={"updated_at": T0 + timedelta(minutes=1), "retired": True}
        )
        assert [e.kind for e in state.apply_record(retired)] == [FleetEventKind.DEPARTED]
        assert "car-1" not in state.vehicles and "car-1" not in state.arrivals

    def test_version_1_telemetry_is_carried_over_into_the_sources(self) -> None:
        state = FleetState()
        state.apply_telemetry(telemetry("car-1", event_time=T0, energy_kwh=30.0))
        assert state.data_note("car-1") is None  # telemetry alone: no sources kept
        state.apply_measured(measured(1, session_id="tx-1", session_energy_kwh=0.0))
        state.apply_measured(measured(2, session_id="tx-1", session_energy_kwh=1.0))
        note = state.data_note("car-1")
        assert note is not None and note.energy_source == "estimated"
        assert state.vehicles["car-1"].energy_kwh > 30.0
        state.apply_telemetry(telemetry("car-1", event_time=T0 + timedelta(minutes=3)))
        assert state.data_note("car-1") is not None  # later telemetry goes through the sources


def test_a_car_with_a_soc_but_no_registry_lacks_only_the_registry() -> None:
    sources = VehicleSources("car-1")
    sources.apply_preferences(PREFERENCES)
    sources.apply_measured(parked(soc_frac=0.4))
    assert sources.lacks() == ["fleet registry entry (battery, charger, compute)"]


def test_version_1_reports_keep_what_the_api_set_until_the_car_says_otherwise() -> None:
    state = FleetState()
    state.apply_telemetry(telemetry("car-1", event_time=T0))
    api = OwnerPreferences(
        vehicle_id="car-1",
        updated_at=T0 + timedelta(minutes=1),
        reserve_kwh=20.0,
        target_kwh=70.0,
        updated_by="owner-car-1",
    )
    state.apply_preferences(api)
    assert state.vehicles["car-1"].target_kwh == 70.0
    # The car reports again, its own (old) wishes unchanged: the owner's API change stays,
    # and nothing asks for a re-plan.
    assert state.apply_telemetry(telemetry("car-1", event_time=T0 + timedelta(minutes=2))) == []
    assert state.vehicles["car-1"].target_kwh == 70.0
    # The car's owner changes the target in the car: the car's report wins.
    state.apply_telemetry(telemetry("car-1", event_time=T0 + timedelta(minutes=3), target_kwh=40.0))
    assert state.vehicles["car-1"].target_kwh == 40.0


def test_a_reading_a_few_seconds_before_the_chargers_arrival_record_counts() -> None:
    sources = car(measured(-0.5, energy_kwh=33.0), parked(0))
    assert sources.energy() == (33.0, "reading", 0.0)


def test_the_estimate_takes_off_what_computing_could_have_drawn() -> None:
    sources = car(parked(0, energy_kwh=30.0, session_id="tx-1", session_energy_kwh=0.0))
    sources.apply_compute(T0, T0 + timedelta(minutes=15))
    sources.apply_compute(T0 + timedelta(minutes=15), T0 + timedelta(minutes=30))
    energy_kwh, source, _ = sources.energy()
    assert source == "estimated" and energy_kwh == 30.0 - 0.3 * 0.5
    sources.apply_measured(measured(30, session_id="tx-1", session_energy_kwh=1.0))
    assert sources.energy()[0] == 30.0 + 0.9 - 0.15
    sources.apply_measured(measured(31, energy_kwh=30.5))  # a reading: computing is in it
    assert sources.energy() == (30.5, "reading", 0.0)
