"""Day-ahead carbon forecasts on the real 2020 series, against persistence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.carbon import (
    REGIONS,
    IntensityCoverageError,
    load_intensity_series,
    resample_to_grid,
)
from forecasting.carbon_forecast import (
    BEST,
    FORECASTERS,
    LaggedRidge,
    Persistence,
    SeasonalBlend,
    backtest,
    day_ahead,
)
from forecasting.skill import ForecastError
from forecasting.timegrid import SlotGrid

JUNE_1 = datetime(2020, 6, 1, tzinfo=UTC)
DEMO_DAY = datetime(2020, 6, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def excerpts() -> dict[str, pd.Series]:
    return {region: load_intensity_series(region) for region in REGIONS}


def skills(result_actual: np.ndarray, forecasts: dict[str, np.ndarray]) -> dict[str, float]:
    baseline = ForecastError.of(forecasts[Persistence.name], result_actual)
    return {
        name: ForecastError.of(forecast, result_actual).skill(baseline)[0]
        for name, forecast in forecasts.items()
    }


@pytest.mark.parametrize("region", REGIONS)
def test_forecasters_beat_persistence_on_held_out_june(
    excerpts: dict[str, pd.Series], region: str
) -> None:
    # June 2020 is after the look-back and was not used to choose any setting.
    result = backtest(excerpts[region], SlotGrid(JUNE_1, 30, 30 * 48))
    assert result.actual_g_per_kwh.shape == (30, 48)
    skill = skills(result.actual_g_per_kwh, result.forecasts_g_per_kwh)
    assert skill[Persistence.name] == 0.0
    assert skill[SeasonalBlend.name] > 0.05
    assert skill[LaggedRidge.name] > 0.15
    assert skill[BEST.name] == max(skill.values())


@pytest.mark.parametrize("region", REGIONS)
def test_ridge_beats_persistence_on_held_out_second_half_of_2020(
    shared_data_dir: Path, region: str
) -> None:
    series = load_intensity_series(region, shared_data_dir / "carbon-intensity")
    result = backtest(series, SlotGrid(datetime(2020, 7, 1, tzinfo=UTC), 30, 184 * 48))
    skill = skills(result.actual_g_per_kwh, result.forecasts_g_per_kwh)
    assert skill[BEST.name] > 0.2
    assert skill[SeasonalBlend.name] > 0.0


def test_persistence_is_yesterday(excerpts: dict[str, pd.Series]) -> None:
    grid = SlotGrid(DEMO_DAY, 15, 96)
    forecast = day_ahead(excerpts["DE"], grid, (Persistence(),))
    yesterday = resample_to_grid(excerpts["DE"], SlotGrid(datetime(2020, 6, 9, tzinfo=UTC), 15, 96))
    np.testing.assert_array_equal(forecast.intensity_g_per_kwh, yesterday)
    assert forecast.forecaster == "persistence"


@pytest.mark.parametrize("region", REGIONS)
def test_forecast_uses_only_data_before_its_start(
    excerpts: dict[str, pd.Series], region: str
) -> None:
    series = excerpts[region]
    grid = SlotGrid(DEMO_DAY, 15, 96)
    future = series.index >= pd.Timestamp(DEMO_DAY)
    scrambled = series.copy()
    scrambled[future] = np.random.default_rng(1).uniform(0, 1000, future.sum())
    first = day_ahead(series, grid)
    assert first.forecaster == BEST.name
    np.testing.assert_array_equal(
        first.intensity_g_per_kwh, day_ahead(scrambled, grid).intensity_g_per_kwh
    )
    assert first.intensity_g_per_kwh.shape == (96,)
    assert (first.intensity_g_per_kwh >= 0).all()


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (datetime(2020, 6, 10, tzinfo=UTC), "lagged-ridge"),  # 24 days of history
        (datetime(2020, 5, 27, tzinfo=UTC), "seasonal-blend"),  # 10 days
        (datetime(2020, 5, 18, 6, tzinfo=UTC), "persistence"),  # 1 day and 6 hours
    ],
)
def test_short_history_falls_back_to_what_fits(
    excerpts: dict[str, pd.Series], start: datetime, expected: str
) -> None:
    assert day_ahead(excerpts["GB"], SlotGrid(start, 30, 48)).forecaster == expected


def test_no_history_is_refused_naming_the_source(excerpts: dict[str, pd.Series]) -> None:
    with pytest.raises(IntensityCoverageError, match=r"region FR.*needs 1 whole day"):
        day_ahead(
            excerpts["FR"],
            SlotGrid(datetime(2020, 5, 17, 12, tzinfo=UTC), 30, 48),
            source="region FR",
        )


def test_horizons_beyond_a_day_feed_forecasts_back(excerpts: dict[str, pd.Series]) -> None:
    two_days = day_ahead(excerpts["DE"], SlotGrid(DEMO_DAY, 60, 60)).intensity_g_per_kwh
    one_day = day_ahead(excerpts["DE"], SlotGrid(DEMO_DAY, 60, 24)).intensity_g_per_kwh
    assert two_days.shape == (60,)
    np.testing.assert_array_equal(two_days[:24], one_day)
    assert np.isfinite(two_days).all() and (two_days > 0).all()


def test_backtest_needs_whole_days_and_history(excerpts: dict[str, pd.Series]) -> None:
    with pytest.raises(ValueError, match="whole UTC days"):
        backtest(excerpts["DE"], SlotGrid(datetime(2020, 6, 1, 6, tzinfo=UTC), 60, 24))
    with pytest.raises(IntensityCoverageError, match="lagged-ridge"):
        backtest(excerpts["DE"], SlotGrid(datetime(2020, 5, 20, tzinfo=UTC), 60, 24))


def test_every_forecaster_is_listed_best_first() -> None:
    assert FORECASTERS[0] is BEST
    assert [f.name for f in FORECASTERS] == ["lagged-ridge", "seasonal-blend", "persistence"]
    assert [f.min_history_days for f in FORECASTERS] == [14, 7, 1]


def test_forecast_error_and_skill() -> None:
    error = ForecastError.of(np.array([1.0, 3.0]), np.array([2.0, 2.0]))
    assert (error.mae, error.rmse) == (1.0, 1.0)
    assert error.skill(ForecastError(mae=2.0, rmse=4.0)) == (0.5, 0.75)
    with pytest.raises(ValueError, match="finite"):
        ForecastError.of(np.array([np.nan]), np.array([1.0]))
