from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from forecasting.timegrid import SlotGrid

JUNE_1 = datetime(2020, 6, 1, tzinfo=UTC)


def test_naive_start_raises_naming_the_field() -> None:
    with pytest.raises(ValueError, match="start") as info:
        SlotGrid(datetime(2020, 6, 1), 15, 4)  # noqa: DTZ001 - naive on purpose
    assert "naive" in str(info.value)


def test_naive_pandas_timestamp_raises() -> None:
    with pytest.raises(ValueError, match="start"):
        SlotGrid(pd.Timestamp("2020-06-01 00:00"), 15, 4)


@pytest.mark.parametrize(
    "start",
    [
        datetime(2020, 6, 1, 0, 5, tzinfo=UTC),
        datetime(2020, 6, 1, 0, 15, 30, tzinfo=UTC),
        datetime(2020, 6, 1, 0, 15, 0, 1, tzinfo=UTC),
    ],
)
def test_start_off_slot_boundary_raises(start: datetime) -> None:
    with pytest.raises(ValueError, match="boundary"):
        SlotGrid(start, 15, 4)


@pytest.mark.parametrize("slot_minutes", [0, -15, 7, 25])
def test_slot_minutes_must_divide_a_day(slot_minutes: int) -> None:
    with pytest.raises(ValueError, match="slot_minutes"):
        SlotGrid(JUNE_1, slot_minutes, 4)


def test_slots_must_be_positive_ints() -> None:
    with pytest.raises(ValueError, match="slots"):
        SlotGrid(JUNE_1, 15, 0)
    with pytest.raises(TypeError, match="slots"):
        SlotGrid(JUNE_1, 15, 4.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="slot_minutes"):
        SlotGrid(JUNE_1, True, 4)


def test_aware_non_utc_start_is_the_same_instant_in_utc() -> None:
    cest = timezone(timedelta(hours=2))
    grid = SlotGrid(datetime(2020, 6, 1, 2, 0, tzinfo=cest), 60, 2)
    assert grid.start == JUNE_1
    assert grid.start.tzinfo is UTC


def test_pandas_utc_timestamp_is_accepted() -> None:
    grid = SlotGrid(pd.Timestamp("2020-06-01T00:00Z"), 30, 2)
    assert grid.start == JUNE_1
    assert type(grid.start) is datetime


def test_lengths_and_slot_starts() -> None:
    grid = SlotGrid(JUNE_1, 15, 96)
    assert grid.dt_h == 0.25
    assert grid.end == datetime(2020, 6, 2, tzinfo=UTC)
    assert grid.slot_start(0) == JUNE_1
    assert grid.slot_start(1) == datetime(2020, 6, 1, 0, 15, tzinfo=UTC)
    assert grid.slot_start(95) == datetime(2020, 6, 1, 23, 45, tzinfo=UTC)
    for bad in (-1, 96):
        with pytest.raises(IndexError):
            grid.slot_start(bad)


def test_index_is_utc_left_labels() -> None:
    grid = SlotGrid(JUNE_1, 30, 48)
    index = grid.index
    assert isinstance(index, pd.DatetimeIndex)
    assert str(index.tz) == "UTC"
    assert len(index) == 48
    assert index[0] == pd.Timestamp(grid.start)
    assert index[-1] + pd.Timedelta(minutes=30) == pd.Timestamp(grid.end)
    assert [index[i] for i in (0, 1, 47)] == [pd.Timestamp(grid.slot_start(i)) for i in (0, 1, 47)]
    assert index.name == "slot_start"


def test_between_builds_whole_slots_only() -> None:
    grid = SlotGrid.between(JUNE_1, datetime(2020, 6, 1, 6, tzinfo=UTC), 15)
    assert grid == SlotGrid(JUNE_1, 15, 24)
    with pytest.raises(ValueError, match="whole number"):
        SlotGrid.between(JUNE_1, datetime(2020, 6, 1, 6, 10, tzinfo=UTC), 15)
    with pytest.raises(ValueError, match="end"):
        SlotGrid.between(JUNE_1, datetime(2020, 6, 2), 15)  # noqa: DTZ001


def test_grid_is_frozen() -> None:
    grid = SlotGrid(JUNE_1, 15, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        grid.slots = 5  # type: ignore[misc]


def test_sample_times_are_slot_midpoints_and_map_back() -> None:
    grid = SlotGrid(JUNE_1, 15, 4)
    times = grid.sample_times(3)
    assert len(times) == 12
    assert times[0] == pd.Timestamp("2020-06-01T00:02:30Z")
    assert times[2] == pd.Timestamp("2020-06-01T00:12:30Z")
    assert times[3] == pd.Timestamp("2020-06-01T00:17:30Z")
    np.testing.assert_array_equal(grid.slot_of(times), np.repeat(np.arange(4), 3))


def test_slot_of_rejects_outside_and_naive_times() -> None:
    grid = SlotGrid(JUNE_1, 15, 4)
    with pytest.raises(ValueError, match="outside"):
        grid.slot_of(pd.DatetimeIndex(["2020-06-01T01:00Z"]))
    with pytest.raises(ValueError, match="naive"):
        grid.slot_of(pd.DatetimeIndex(["2020-06-01T00:10"]))
