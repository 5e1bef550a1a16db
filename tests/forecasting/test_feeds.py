"""WattTime- and Electricity-Maps-shaped feeds: names, units, and average vs marginal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from forecasting.feeds import (
    VARIABLE_MAP,
    AverageIntensity,
    FeedError,
    MarginalIntensity,
    read_average_feed,
    read_feed,
)
from forecasting.timegrid import SlotGrid


def watttime(signal: str = "co2_moer", units: str = "lbs_co2_per_mwh") -> dict[str, Any]:
    return {
        "meta": {"region": "CAISO_NORTH", "signal_type": signal, "units": units},
        "data": [
            {"point_time": "2024-03-01T00:00:00+00:00", "value": 1000.0, "version": "3.0"},
            {"point_time": "2024-03-01T00:05:00+00:00", "value": 800.0, "version": "3.0"},
            {"point_time": "2024-03-01T00:10:00+00:00", "value": 0.0, "version": "3.0"},
        ],
    }


def electricitymaps(key: str = "history", factor: str = "lifecycle") -> dict[str, Any]:
    return {
        "zone": "DE",
        key: [
            {
                "zone": "DE",
                "carbonIntensity": 302,
                "datetime": "2024-03-01T00:00:00.000Z",
                "emissionFactorType": factor,
                "isEstimated": False,
            },
            {
                "zone": "DE",
                "carbonIntensity": 290.5,
                "datetime": "2024-03-01T01:00:00.000Z",
                "emissionFactorType": factor,
                "isEstimated": True,
            },
        ],
    }


def test_watttime_moer_is_marginal_in_grams_per_kwh() -> None:
    intensity = read_feed("watttime", json.dumps(watttime()))
    assert isinstance(intensity, MarginalIntensity)
    assert not isinstance(intensity, AverageIntensity)
    assert intensity.kind == "marginal"
    # 1000 lb/MWh = 453.59237 kg/MWh = 453.59237 g/kWh
    np.testing.assert_allclose(intensity.series.to_numpy(), [453.59237, 362.873896, 0.0])
    assert intensity.series.name == "intensity_g_per_kwh"
    assert intensity.series.index[0] == datetime(2024, 3, 1, tzinfo=UTC)
    assert str(intensity.series.index.tz) == "UTC"


def test_a_marginal_feed_is_never_taken_as_average() -> None:
    with pytest.raises(FeedError, match="marginal"):
        read_average_feed("watttime", watttime())


def test_watttime_aoer_is_average() -> None:
    intensity = read_average_feed("watttime", watttime("co2_aoer"))
    assert intensity.kind == "average"
    assert intensity.series.iloc[0] == pytest.approx(453.59237)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (watttime(units="kg_co2_per_mwh"), "meta.units must be 'lbs_co2_per_mwh'"),
        (watttime(signal="health_damage"), "meta.signal_type must be one of"),
        ({"data": watttime()["data"]}, "meta.units"),
    ],
)
def test_watttime_refuses_other_units_and_signals(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(FeedError, match=match):
        read_feed("watttime", doc)


@pytest.mark.parametrize("key", ["history", "forecast"])
def test_electricity_maps_is_average_lifecycle_unchanged(key: str) -> None:
    intensity = read_feed("electricitymaps", json.dumps(electricitymaps(key)).encode())
    assert isinstance(intensity, AverageIntensity)
    np.testing.assert_array_equal(intensity.series.to_numpy(), [302.0, 290.5])
    grid = SlotGrid(datetime(2024, 3, 1, tzinfo=UTC), 30, 4)
    np.testing.assert_array_equal(intensity.on_grid(grid), [302.0, 302.0, 290.5, 290.5])


def test_electricity_maps_direct_factors_are_refused() -> None:
    with pytest.raises(FeedError, match="emissionFactorType must be 'lifecycle'"):
        read_feed("electricitymaps", electricitymaps(factor="direct"))


@pytest.mark.parametrize(
    ("feed", "doc", "match"),
    [
        ("wattime", watttime(), "feed must be one of"),
        ("watttime", [], "JSON object"),
        ("electricitymaps", {"zone": "DE"}, "exactly one of"),
        ("electricitymaps", {"history": []}, "non-empty"),
        ("electricitymaps", {"history": [{"datetime": "2024-03-01T00:00Z"}]}, "carbonIntensity"),
        (
            "electricitymaps",
            {"history": [{"datetime": "2024-03-01T00:00Z", "carbonIntensity": "high"}]},
            "must be a number",
        ),
        (
            "electricitymaps",
            {"history": [{"datetime": "2024-03-01T00:00", "carbonIntensity": 1}]},
            "naive",
        ),
        (
            "electricitymaps",
            {"history": [{"datetime": "2024-03-01T00:00Z", "carbonIntensity": -1}]},
            ">= 0",
        ),
    ],
)
def test_malformed_feeds_are_refused(feed: str, doc: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        read_feed(feed, doc)


def test_one_variable_map_names_every_feed() -> None:
    assert set(VARIABLE_MAP) == {"watttime", "electricitymaps"}
    assert VARIABLE_MAP["watttime"].g_per_kwh_per_unit == pytest.approx(0.45359237)
    assert set(VARIABLE_MAP["watttime"].kinds.values()) == {"average", "marginal"}
    assert set(VARIABLE_MAP["electricitymaps"].kinds.values()) == {"average"}
