"""The fallback intensity: the real 2020 series moved to any date by season, weekday and hour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.carbon import REGIONS, intensity_on_grid, load_intensity_series
from forecasting.fallback import FallbackProfile
from forecasting.regions import REGION_TIMEZONES
from forecasting.timegrid import SlotGrid

PROPERTIES = settings(max_examples=60, deadline=None)
SLOT_MINUTES = st.sampled_from([5, 15, 30, 60, 120])


@pytest.fixture(scope="module")
def profiles() -> dict[str, FallbackProfile]:
    return {
        region: FallbackProfile.from_series(
            load_intensity_series(region), region, REGION_TIMEZONES[region]
        )
        for region in REGIONS
    }


@pytest.fixture(scope="module")
def series() -> dict[str, pd.Series]:
    return {region: load_intensity_series(region) for region in REGIONS}


def moment(day: date, slot_index: int, slot_minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + slot_index * timedelta(
        minutes=slot_minutes
    )


@PROPERTIES
@given(
    region=st.sampled_from(REGIONS),
    day=st.dates(date(2000, 1, 1), date(2099, 12, 30)),
    slot_minutes=SLOT_MINUTES,
    first=st.integers(0, 23),
    slots=st.integers(1, 200),
)
def test_every_date_gets_values_of_the_real_range_and_a_label(
    profiles: dict[str, FallbackProfile],
    series: dict[str, pd.Series],
    region: str,
    day: date,
    slot_minutes: int,
    first: int,
    slots: int,
) -> None:
    start = moment(day, first, slot_minutes)
    made = profiles[region].values(start, slot_minutes, slots)
    values = made.intensity_g_per_kwh
    assert values.shape == (slots,) and np.isfinite(values).all()
    real = series[region]
    # Every value is a mean of real values: never outside what was measured.
    assert real.min() - 1e-9 <= values.min() and values.max() <= real.max() + 1e-9
    assert made.source.startswith(f"fallback: {region} 2020 ")
    assert made.source.endswith(f"shifted to {start.date().isoformat()}")
    assert len(made.source) <= 200
    assert 0.0 <= made.same_week_frac <= 1.0


@PROPERTIES
@given(
    region=st.sampled_from(REGIONS),
    year=st.integers(2021, 2040),
    week=st.integers(21, 26),
    weekday=st.integers(1, 7),
    slot_minutes=SLOT_MINUTES,
)
def test_in_season_it_is_the_2020_day_of_the_same_week_and_weekday(
    profiles: dict[str, FallbackProfile],
    region: str,
    year: int,
    week: int,
    weekday: int,
    slot_minutes: int,
) -> None:
    """In ISO weeks 21-26 summer time holds in 2020 and the target year alike, so local
    hours fall on the same UTC hours and the fallback is the real 2020 day, slot for slot."""
    target = date.fromisocalendar(year, week, weekday)
    source = date.fromisocalendar(2020, week, weekday)
    slots = 24 * 60 // slot_minutes
    made = profiles[region].values(moment(target, 0, slot_minutes), slot_minutes, slots)
    actual = intensity_on_grid(
        region, SlotGrid(moment(source, 0, slot_minutes), slot_minutes, slots)
    )
    np.testing.assert_allclose(made.intensity_g_per_kwh, actual, rtol=1e-12, atol=1e-9)
    assert made.same_week_frac == 1.0
    assert "same ISO week, weekday and hour" in made.source


@PROPERTIES
@given(
    region=st.sampled_from(REGIONS),
    day=st.dates(date(2021, 11, 2), date(2022, 2, 18)),
    slot_minutes=SLOT_MINUTES,
    first=st.integers(0, 23),
    slots=st.integers(1, 96),
)
def test_out_of_season_it_repeats_every_week(
    profiles: dict[str, FallbackProfile],
    region: str,
    day: date,
    slot_minutes: int,
    first: int,
    slots: int,
) -> None:
    """November to February lies outside the shipped weeks and holds no clock change: the
    fallback is the weekday-hour mean, the same a week later."""
    start = moment(day, first, slot_minutes)
    made = profiles[region].values(start, slot_minutes, slots)
    later = profiles[region].values(start + timedelta(days=7), slot_minutes, slots)
    np.testing.assert_allclose(made.intensity_g_per_kwh, later.intensity_g_per_kwh)
    assert made.same_week_frac == 0.0
    assert "same weekday and hour, mean over 17 May-30 Jun 2020" in made.source


@PROPERTIES
@given(
    region=st.sampled_from(REGIONS),
    day=st.dates(date(2020, 1, 1), date(2035, 12, 30)),
    hours=st.integers(1, 48),
)
def test_a_long_slot_is_the_mean_of_the_short_slots_inside_it(
    profiles: dict[str, FallbackProfile], region: str, day: date, hours: int
) -> None:
    start = moment(day, 0, 60)
    hourly = profiles[region].values(start, 60, hours).intensity_g_per_kwh
    quarters = profiles[region].values(start, 15, 4 * hours).intensity_g_per_kwh
    np.testing.assert_allclose(hourly, quarters.reshape(hours, 4).mean(axis=1))


def test_out_of_season_a_slot_is_the_mean_of_that_weekday_and_local_hour(
    profiles: dict[str, FallbackProfile],
) -> None:
    """Saturday 2026-12-05 15:00Z is 16:00 in Berlin (CET); in the excerpt 16:00 CEST is
    14:00Z, on the six Saturdays it holds (23 May to 27 June 2020)."""
    made = profiles["DE"].values(datetime(2026, 12, 5, 15, 0, tzinfo=UTC), 15, 1)
    saturdays = [date(2020, 5, 23) + timedelta(weeks=k) for k in range(6)]
    expected = np.mean(
        [
            intensity_on_grid(
                "DE", SlotGrid(datetime(d.year, d.month, d.day, 14, tzinfo=UTC), 15, 1)
            )[0]
            for d in saturdays
        ]
    )
    assert made.intensity_g_per_kwh[0] == pytest.approx(expected, rel=1e-12)
    assert made.source == (
        "fallback: DE 2020 same weekday and hour, mean over 17 May-30 Jun 2020, "
        "shifted to 2026-12-05"
    )


def test_a_horizon_leaving_the_shipped_weeks_says_it_mixes_both_rules(
    profiles: dict[str, FallbackProfile],
) -> None:
    made = profiles["GB"].values(datetime(2026, 6, 30, tzinfo=UTC), 30, 96)  # Tue to Thu
    assert 0.0 < made.same_week_frac < 1.0
    assert "where held, else weekday-hour mean" in made.source


@pytest.mark.parametrize("day", [date(2026, 3, 29), date(2026, 10, 25)], ids=["spring", "autumn"])
def test_clock_change_days_have_every_slot(profiles: dict[str, FallbackProfile], day: date) -> None:
    made = profiles["FR"].values(moment(day, 0, 15), 15, 96)
    assert np.isfinite(made.intensity_g_per_kwh).all()


def test_less_than_a_week_is_refused(series: dict[str, pd.Series]) -> None:
    four_days = series["DE"]["2020-06-01":"2020-06-04"]
    with pytest.raises(ValueError, match="every weekday at every time of day"):
        FallbackProfile.from_series(four_days, "DE", "Europe/Berlin")


def test_the_full_year_covers_every_week(shared_data_dir: object) -> None:
    from pathlib import Path

    assert isinstance(shared_data_dir, Path)
    full = load_intensity_series("DE", shared_data_dir / "carbon-intensity")
    profile = FallbackProfile.from_series(full, "DE", "Europe/Berlin")
    made = profile.values(datetime(2026, 12, 5, tzinfo=UTC), 15, 96)
    assert made.same_week_frac == 1.0
    assert made.source == "fallback: DE 2020 same ISO week, weekday and hour, shifted to 2026-12-05"
