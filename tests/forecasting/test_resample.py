"""Step series on slot grids: resolution, held values and named holes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from forecasting.resample import CoverageError, held_values, hold_means, regular_spacing
from forecasting.timegrid import SlotGrid

HOUR = timedelta(hours=1)
STARTS = pd.DatetimeIndex(["2020-06-01T00:00Z", "2020-06-01T01:00Z", "2020-06-01T03:00Z"])


def test_resolution_is_the_most_common_spacing() -> None:
    assert regular_spacing(STARTS, "x") == HOUR
    with pytest.raises(ValueError, match="at least 2"):
        regular_spacing(STARTS[:1], "x")
    with pytest.raises(ValueError, match="strictly increasing"):
        regular_spacing(STARTS[::-1], "x")


def test_held_values_and_the_holes_they_name() -> None:
    frame = pd.DataFrame({"v": [1.0, 2.0, 3.0]}, index=STARTS)
    times = pd.DatetimeIndex(["2020-06-01T00:30Z", "2020-06-01T01:59Z", "2020-06-01T03:10Z"])
    np.testing.assert_array_equal(held_values(frame, times, HOUR, "x")["v"], [1.0, 2.0, 3.0])
    outside = pd.DatetimeIndex(["2020-05-31T23:00Z", "2020-06-01T02:30Z", "2020-06-01T04:00Z"])
    with pytest.raises(CoverageError) as info:
        held_values(frame, outside, HOUR, "weather")
    assert str(info.value).startswith(
        "weather is missing for before 2020-06-01T00:00Z, 2020-06-01T02:00Z to "
        "2020-06-01T03:00Z, from 2020-06-01T04:00Z"
    )


def test_slot_means_weight_each_value_by_how_long_it_holds() -> None:
    series = pd.Series([1.0, 2.0, 3.0], index=STARTS)
    grid = SlotGrid(datetime(2020, 6, 1, tzinfo=UTC), 120, 1)
    np.testing.assert_allclose(hold_means(series, grid, HOUR), [1.5])
    with pytest.raises(CoverageError, match="2020-06-01T02:00Z to 2020-06-01T03:00Z"):
        hold_means(series, SlotGrid(datetime(2020, 6, 1, tzinfo=UTC), 60, 4), HOUR)
    # a two-hour tolerance bridges the missing hour by holding the previous value
    bridged = hold_means(series, SlotGrid(datetime(2020, 6, 1, tzinfo=UTC), 60, 4), 2 * HOUR)
    np.testing.assert_array_equal(bridged, [1.0, 2.0, 2.0, 3.0])
