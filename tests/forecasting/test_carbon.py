"""Average carbon intensity: the shipped excerpt, the full files and slot means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.carbon import (
    REGIONS,
    IntensityCoverageError,
    intensity_on_grid,
    load_intensity_series,
    read_excerpt_csv,
    resample_to_grid,
)
from forecasting.timegrid import SlotGrid

JUNE_1 = datetime(2020, 6, 1, tzinfo=UTC)
EXCERPT_START = datetime(2020, 5, 17, tzinfo=UTC)
EXCERPT_END = datetime(2020, 7, 1, tzinfo=UTC)
NATIVE_MINUTES = {"DE": 15, "GB": 30, "FR": 30}


@pytest.fixture(scope="module")
def excerpts() -> dict[str, pd.Series]:
    return {region: load_intensity_series(region) for region in REGIONS}


def june(slot_minutes: int) -> SlotGrid:
    return SlotGrid.between(JUNE_1, EXCERPT_END, slot_minutes)


def native_june(series: pd.Series) -> np.ndarray:
    return series[series.index >= pd.Timestamp(JUNE_1)].to_numpy()


@pytest.mark.parametrize("region", REGIONS)
def test_excerpt_series_shape(excerpts: dict[str, pd.Series], region: str) -> None:
    series = excerpts[region]
    assert series.name == "intensity_g_per_kwh"
    assert series.dtype == np.float64
    assert str(series.index.tz) == "UTC"
    assert series.index[0] == pd.Timestamp(EXCERPT_START)
    step = pd.Timedelta(minutes=NATIVE_MINUTES[region])
    assert (series.index.to_series().diff().iloc[1:] == step).all()
    assert series.index[-1] + step == pd.Timestamp(EXCERPT_END)
    assert series.min() > 0 and series.max() < 1000


def test_de_on_its_native_15_min_grid_is_the_identity(excerpts: dict[str, pd.Series]) -> None:
    on_grid = intensity_on_grid("DE", june(15))
    np.testing.assert_allclose(on_grid, native_june(excerpts["DE"]), rtol=1e-14)


@pytest.mark.parametrize("region", ["GB", "FR"])
def test_30_min_values_are_held_on_a_15_min_grid(
    excerpts: dict[str, pd.Series], region: str
) -> None:
    on_grid = intensity_on_grid(region, june(15))
    np.testing.assert_allclose(on_grid, np.repeat(native_june(excerpts[region]), 2), rtol=1e-14)


@pytest.mark.parametrize("region", REGIONS)
def test_hourly_slots_are_means_of_native_values(
    excerpts: dict[str, pd.Series], region: str
) -> None:
    per_hour = 60 // NATIVE_MINUTES[region]
    expected = native_june(excerpts[region]).reshape(-1, per_hour).mean(axis=1)
    np.testing.assert_allclose(intensity_on_grid(region, june(60)), expected, rtol=1e-12)


def test_grid_mean_is_independent_of_slot_length() -> None:
    daily = intensity_on_grid("DE", june(1440))
    for slot_minutes in (5, 45, 60, 180):
        fine = intensity_on_grid("DE", june(slot_minutes))
        per_day = 1440 // slot_minutes
        np.testing.assert_allclose(fine.reshape(-1, per_day).mean(axis=1), daily, rtol=1e-12)


def test_lookback_day_is_available() -> None:
    grid = SlotGrid(EXCERPT_START, 30, 48)
    assert intensity_on_grid("GB", grid).shape == (48,)


@pytest.mark.parametrize(
    ("start", "end", "missing"),
    [
        (EXCERPT_END, datetime(2020, 7, 2, tzinfo=UTC), "2020-07-01T00:00Z to 2020-07-02T00:00Z"),
        (
            datetime(2020, 5, 16, 18, tzinfo=UTC),
            datetime(2020, 5, 17, 6, tzinfo=UTC),
            "2020-05-16T18:00Z to 2020-05-17T00:00Z",
        ),
        (
            datetime(2020, 6, 30, 12, tzinfo=UTC),
            datetime(2020, 7, 1, 1, tzinfo=UTC),
            "2020-07-01T00:00Z to 2020-07-01T01:00Z",
        ),
    ],
)
def test_period_outside_excerpt_raises_naming_region_and_period(
    start: datetime, end: datetime, missing: str
) -> None:
    with pytest.raises(IntensityCoverageError) as info:
        intensity_on_grid("FR", SlotGrid.between(start, end, 60))
    message = str(info.value)
    assert "region FR" in message
    assert missing in message
    assert "shipped excerpt" in message


def test_unknown_region_raises() -> None:
    with pytest.raises(ValueError, match="region must be one of"):
        load_intensity_series("CAISO")


def test_naive_inputs_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="start"):
        SlotGrid(datetime(2020, 6, 1), 15, 4)  # noqa: DTZ001 - naive on purpose
    naive = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(["2020-06-01 00:00", "2020-06-01 00:30"]))
    with pytest.raises(ValueError, match="timezone-aware"):
        resample_to_grid(naive, june(30))
    path = tmp_path / "naive.csv"
    path.write_text("slot_start,intensity_g_per_kwh\n2020-06-01T00:00:00,1.0\n")
    with pytest.raises(ValueError, match="naive"):
        read_excerpt_csv(path)


def test_missing_source_file_names_region(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="region GB"):
        load_intensity_series("GB", data_dir=tmp_path)


def test_gap_longer_than_an_hour_is_missing_data() -> None:
    index = pd.DatetimeIndex(
        ["2020-06-01T00:00Z", "2020-06-01T00:30Z", "2020-06-01T03:00Z", "2020-06-01T03:30Z"]
    )
    series = pd.Series([1.0, 2.0, 3.0, 4.0], index=index)
    with pytest.raises(IntensityCoverageError, match="2020-06-01T01:00Z to 2020-06-01T03:00Z"):
        resample_to_grid(series, SlotGrid(JUNE_1, 30, 8))
    before_gap = resample_to_grid(series, SlotGrid(JUNE_1, 60, 1))
    np.testing.assert_allclose(before_gap, [1.5])


# --- the full source files under ../shared (skipped when absent) ---------------------


@pytest.mark.parametrize("region", REGIONS)
def test_excerpt_agrees_with_full_file(
    shared_data_dir: Path, excerpts: dict[str, pd.Series], region: str
) -> None:
    full = load_intensity_series(region, data_dir=shared_data_dir / "carbon-intensity")
    excerpt = excerpts[region]
    window = full[(full.index >= excerpt.index[0]) & (full.index < pd.Timestamp(EXCERPT_END))]
    pd.testing.assert_series_equal(window, excerpt, check_exact=True, check_index_type=False)
    grid = june(60)
    np.testing.assert_array_equal(
        intensity_on_grid(region, grid, data_dir=shared_data_dir / "carbon-intensity"),
        intensity_on_grid(region, grid),
    )


def test_full_file_year_statistics_match_the_paper(shared_data_dir: Path) -> None:
    grid = SlotGrid(datetime(2020, 1, 1, tzinfo=UTC), 30, 366 * 48)
    # The paper samples the :00 and :30 values; for 30-min DE slots we take the mean of two
    # quarter-hours instead, so only FR (30-min native) matches its mean closely here.
    fr = intensity_on_grid("FR", grid, data_dir=shared_data_dir / "carbon-intensity")
    assert fr.mean() == pytest.approx(56.337, abs=0.01)
    de = intensity_on_grid("DE", grid, data_dir=shared_data_dir / "carbon-intensity")
    assert de.mean() == pytest.approx(313.396, rel=0.01)


def test_full_file_bridges_short_de_gap_and_reports_end(shared_data_dir: Path) -> None:
    data_dir = shared_data_dir / "carbon-intensity"
    # 2020-12-19 23:15 and 23:45 are missing in ger_ci.csv: the previous value holds.
    # The file ends with 2021-01-09 23:00, which holds until 23:15.
    grid = SlotGrid(datetime(2020, 12, 19, 23, tzinfo=UTC), 15, 4)
    values = intensity_on_grid("DE", grid, data_dir=data_dir)
    assert values[0] == values[1] and values[2] == values[3]
    with pytest.raises(
        IntensityCoverageError, match=r"region DE .*2021-01-09T23:15Z to 2021-01-11T00:00Z"
    ):
        intensity_on_grid("DE", SlotGrid(datetime(2021, 1, 9, tzinfo=UTC), 60, 48), data_dir)


# --- property ---------------------------------------------------------------------------

SLOT_MINUTES = [1, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 360, 1440]


@st.composite
def grids_in_excerpt(draw: st.DrawFn) -> tuple[str, SlotGrid]:
    region = draw(st.sampled_from(REGIONS))
    slot_minutes = draw(st.sampled_from(SLOT_MINUTES))
    total_slots = (EXCERPT_END - EXCERPT_START) // timedelta(minutes=slot_minutes)
    first = draw(st.integers(0, total_slots - 1))
    slots = draw(st.integers(1, min(96, total_slots - first)))
    start = EXCERPT_START + first * timedelta(minutes=slot_minutes)
    return region, SlotGrid(start, slot_minutes, slots)


@settings(max_examples=200, deadline=None)
@given(case=grids_in_excerpt())
def test_slot_means_lie_within_source_values_in_the_slot(
    excerpts: dict[str, pd.Series], case: tuple[str, SlotGrid]
) -> None:
    region, grid = case
    series = excerpts[region]
    means = resample_to_grid(series, grid)
    starts = series.index
    ends = starts + pd.Timedelta(minutes=NATIVE_MINUTES[region])
    values = series.to_numpy()
    for i, mean in enumerate(means):
        slot_start = pd.Timestamp(grid.slot_start(i))
        inside = (starts < slot_start + grid.slot) & (ends > slot_start)
        low, high = values[inside].min(), values[inside].max()
        assert low - 1e-9 * high <= mean <= high * (1 + 1e-9)
