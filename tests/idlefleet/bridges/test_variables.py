"""Variable maps: unit conversions and how several signals give one quantity."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idlefleet.bridges.fleet_telemetry import VARIABLE_MAP
from idlefleet.bridges.variables import (
    ChargeStateVariable,
    LocationVariable,
    NumberVariable,
    ReadingError,
    apply_map,
)

PCT = NumberVariable("soc_frac", "pct", 0.01, 0.0, 100.0)
percents = st.floats(0.0, 100.0)


@settings(max_examples=200, deadline=None)
@given(percents)
def test_percent_becomes_a_fraction_in_0_1(pct: float) -> None:
    frac = PCT.convert("Soc", pct)
    assert 0.0 <= frac <= 1.0
    assert frac == pytest.approx(pct / 100.0)


@settings(max_examples=200, deadline=None)
@given(percents)
def test_text_reads_as_the_number_it_writes(pct: float) -> None:
    """Vehicles send numbers as text with three decimals ("42.880")."""
    assert PCT.convert("Soc", f"{pct:.3f}") == pytest.approx(pct / 100.0, abs=5e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=100.0 + 1e-9), st.just(float("nan")))
)
def test_percents_outside_0_100_are_refused(pct: float) -> None:
    with pytest.raises(ReadingError, match="out of range: Soc"):
        PCT.convert("Soc", pct)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 100.0), st.floats(0.0, 1500.0), st.floats(0.0, 1000.0))
def test_tesla_conversions(ac_kw: float, dc_kw: float, kwh: float) -> None:
    """Power through the AC and DC inlets adds up; energy passes in kWh."""
    quantities = apply_map(
        {"ACChargingPower": ac_kw, "DCChargingPower": str(dc_kw), "EnergyRemaining": kwh},
        VARIABLE_MAP,
    )
    assert quantities.power_kw == pytest.approx(ac_kw + dc_kw)
    assert quantities.energy_kwh == kwh


@settings(max_examples=100, deadline=None)
@given(percents, percents)
def test_the_first_signal_in_map_order_wins(battery_level: float, soc: float) -> None:
    both = apply_map({"Soc": soc, "BatteryLevel": battery_level}, VARIABLE_MAP)
    assert both.soc_frac == pytest.approx(battery_level / 100.0)
    assert apply_map({"Soc": soc}, VARIABLE_MAP).soc_frac == pytest.approx(soc / 100.0)


def test_an_unknown_charge_state_says_nothing_and_the_next_signal_speaks() -> None:
    variable_map = {
        "A": ChargeStateVariable({"?": None, "on": True}),
        "B": ChargeStateVariable({"off": False}),
    }
    assert apply_map({"A": "?", "B": "off"}, variable_map).plugged_in is False
    assert apply_map({"A": "on", "B": "off"}, variable_map).plugged_in is True
    assert apply_map({"A": "?"}, variable_map).plugged_in is None
    with pytest.raises(ReadingError, match="B 'maybe' is no known charge state"):
        apply_map({"A": "on", "B": "maybe"}, variable_map)


@pytest.mark.parametrize("reading", [True, (1.0, 2.0), "12 kW"])
def test_numbers_are_numbers(reading: bool | tuple[float, float] | str) -> None:
    with pytest.raises(ReadingError, match="not a number"):
        PCT.convert("Soc", reading)


def test_a_location_is_a_position() -> None:
    assert LocationVariable().convert("Location", (52.5, 13.4)) == (52.5, 13.4)
    with pytest.raises(ReadingError, match="no position"):
        LocationVariable().convert("Location", "somewhere")


def test_tesla_s_map_names_only_signals_of_the_public_definition() -> None:
    from idlefleet.bridges.proto_gen.tesla import vehicle_data_pb2 as pb

    assert set(VARIABLE_MAP) <= set(pb.Field.keys())
    states = VARIABLE_MAP["DetailedChargeState"]
    assert isinstance(states, ChargeStateVariable)
    assert set(states.states) == set(pb.DetailedChargeStateValue.keys())
