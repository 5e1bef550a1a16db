"""Meter values of both versions to one sample: units, multipliers and phases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from idlefleet.ocpp.meters import MeterError, samples_v16, samples_v201

STAMP = "2025-06-02T10:00:00Z"


def test_v201_units_and_multipliers_become_wh_w_and_percent() -> None:
    (sample,) = samples_v201(
        [
            {
                "timestamp": STAMP,
                "sampled_value": [
                    {"value": 12.5, "unit_of_measure": {"unit": "kWh"}},  # the default measurand
                    {
                        "value": 7.4,
                        "measurand": "Power.Active.Import",
                        "unit_of_measure": {"unit": "W", "multiplier": 3},
                    },
                    {"value": 64, "measurand": "SoC", "unit_of_measure": {"unit": "Percent"}},
                ],
            }
        ]
    )
    assert sample.time == datetime(2025, 6, 2, 10, tzinfo=UTC)
    assert sample.energy_wh == 12500.0
    assert sample.power_w == pytest.approx(7400.0) and sample.power_kw == pytest.approx(7.4)
    assert sample.soc_pct == 64.0


def test_v16_power_per_phase_only_is_summed_and_a_total_wins() -> None:
    phases = [
        {"value": "2.3", "measurand": "Power.Active.Import", "unit": "kW", "phase": p}
        for p in ("L1", "L2", "L3")
    ]
    (per_phase,) = samples_v16([{"timestamp": STAMP, "sampled_value": phases}])
    assert per_phase.power_w == pytest.approx(6900.0)
    assert per_phase.soc_pct is None and per_phase.energy_wh is None
    total = [*phases, {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"}]
    (with_total,) = samples_v16([{"timestamp": STAMP, "sampled_value": total}])
    assert with_total.power_w == 7000.0


@pytest.mark.parametrize(
    "meter_value",
    [
        {"timestamp": "2025-06-02T10:00:00", "sampled_value": []},
        {"timestamp": STAMP, "sampled_value": [{"value": "x"}]},
        {"timestamp": STAMP, "sampled_value": [{"value": "1", "unit": "varh"}]},
    ],
    ids=["naive", "not-a-number", "unknown-unit"],
)
def test_unreadable_meter_values_raise(meter_value: dict[str, object]) -> None:
    with pytest.raises(MeterError):
        samples_v16([meter_value])
