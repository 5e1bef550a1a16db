"""Clear-sky PV with real pvlib (no mocks)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pvlib
import pytest

from forecasting.solar import (
    WEATHER_COLUMNS,
    PvSystemSpec,
    clear_sky_pv_kw,
    clear_sky_weather,
    linke_turbidity,
    pv_kw_from_irradiance,
)
from forecasting.timegrid import SlotGrid

MIDSUMMER = datetime(2020, 6, 21, tzinfo=UTC)


def day_grid(slot_minutes: int, day: datetime = MIDSUMMER) -> SlotGrid:
    return SlotGrid(day, slot_minutes, 24 * 60 // slot_minutes)


def solar_noon_utc(day: datetime, longitude_deg: float) -> datetime:
    """Solar noon from the Spencer equation of time (independent of the code under test)."""
    doy = day.timetuple().tm_yday
    eot_min = float(pvlib.solarposition.equation_of_time_spencer71(doy))
    return day + timedelta(minutes=720 - 4 * longitude_deg - eot_min)


def test_zero_at_night_and_never_negative(berlin_10kwp: PvSystemSpec) -> None:
    grid = day_grid(15)
    pv_kw = clear_sky_pv_kw(berlin_10kwp, grid)
    assert pv_kw.shape == (grid.slots,)
    assert (pv_kw >= 0).all()
    hours = grid.index.hour
    night = (hours >= 21) | (hours < 1)  # sun well below the horizon in Berlin in June
    assert (pv_kw[night] == 0).all()
    assert (pv_kw[(hours >= 9) & (hours < 13)] > 5).all()


def test_peak_near_solar_noon(berlin_10kwp: PvSystemSpec) -> None:
    grid = day_grid(15)
    pv_kw = clear_sky_pv_kw(berlin_10kwp, grid)
    peak_mid = grid.slot_start(int(np.argmax(pv_kw))) + grid.slot / 2
    noon = solar_noon_utc(MIDSUMMER, berlin_10kwp.longitude_deg)
    assert abs(peak_mid - noon) <= timedelta(minutes=30)
    # a south-facing array under a clear sky is nearly symmetric about solar noon
    minutes = clear_sky_pv_kw(berlin_10kwp, day_grid(1))
    i_noon = round((noon - MIDSUMMER) / timedelta(minutes=1))
    for offset in (60, 180, 300):
        assert minutes[i_noon - offset] == pytest.approx(minutes[i_noon + offset], rel=0.05)


def test_daily_energy_is_plausible(berlin_10kwp: PvSystemSpec) -> None:
    grid = day_grid(60)
    energy_kwh = float(np.sum(clear_sky_pv_kw(berlin_10kwp, grid) * grid.dt_h))
    assert 50.0 <= energy_kwh <= 90.0
    winter = day_grid(60, datetime(2020, 12, 21, tzinfo=UTC))
    winter_kwh = float(np.sum(clear_sky_pv_kw(berlin_10kwp, winter) * winter.dt_h))
    assert 0 < winter_kwh < energy_kwh / 2


@pytest.mark.parametrize("slot_minutes", [1, 5, 15, 30, 120])
def test_finer_grids_conserve_daily_energy(berlin_10kwp: PvSystemSpec, slot_minutes: int) -> None:
    hourly = day_grid(60)
    reference_kwh = float(np.sum(clear_sky_pv_kw(berlin_10kwp, hourly) * hourly.dt_h))
    grid = day_grid(slot_minutes)
    energy_kwh = float(np.sum(clear_sky_pv_kw(berlin_10kwp, grid) * grid.dt_h))
    assert energy_kwh == pytest.approx(reference_kwh, rel=0.02)


def test_hour_is_mean_of_its_quarter_hours(berlin_10kwp: PvSystemSpec) -> None:
    hourly = clear_sky_pv_kw(berlin_10kwp, day_grid(60))
    quarters = clear_sky_pv_kw(berlin_10kwp, day_grid(15))
    np.testing.assert_allclose(hourly, quarters.reshape(24, 4).mean(axis=1), rtol=1e-9)


def test_slot_means_respect_ac_limit(berlin_10kwp: PvSystemSpec) -> None:
    limited = dataclasses.replace(berlin_10kwp, ac_limit_kw=6.0)
    grid = day_grid(15)
    free_kw = clear_sky_pv_kw(berlin_10kwp, grid)
    limited_kw = clear_sky_pv_kw(limited, grid)
    assert limited_kw.max() <= 6.0
    assert np.isclose(limited_kw, 6.0).sum() >= 8  # clipping binds around noon
    assert (limited_kw <= free_kw + 0.1).all()
    assert limited_kw.sum() < free_kw.sum()


def test_irradiance_entry_point_matches_clear_sky(berlin_10kwp: PvSystemSpec) -> None:
    grid = day_grid(30)
    weather = clear_sky_weather(berlin_10kwp, grid.sample_times(6))
    assert list(weather.columns) == list(WEATHER_COLUMNS)
    np.testing.assert_allclose(
        pv_kw_from_irradiance(berlin_10kwp, weather, grid), clear_sky_pv_kw(berlin_10kwp, grid)
    )
    dark = weather.assign(ghi_w_per_m2=0.0, dni_w_per_m2=0.0, dhi_w_per_m2=0.0)
    assert (pv_kw_from_irradiance(berlin_10kwp, dark, grid) == 0).all()
    hot = weather.assign(temp_air_c=40.0)
    assert pv_kw_from_irradiance(berlin_10kwp, hot, grid).sum() < (
        pv_kw_from_irradiance(berlin_10kwp, weather, grid).sum()
    )


def test_irradiance_entry_point_validates_weather(berlin_10kwp: PvSystemSpec) -> None:
    grid = day_grid(60)
    weather = clear_sky_weather(berlin_10kwp, grid.sample_times(2))
    with pytest.raises(ValueError, match="temp_air_c"):
        pv_kw_from_irradiance(berlin_10kwp, weather.drop(columns="temp_air_c"), grid)
    with pytest.raises(ValueError, match="no samples"):
        pv_kw_from_irradiance(berlin_10kwp, weather.iloc[2:], grid)
    with pytest.raises(ValueError, match="outside"):
        pv_kw_from_irradiance(berlin_10kwp, weather, SlotGrid(MIDSUMMER, 60, 12))
    with pytest.raises(ValueError, match="naive"):
        pv_kw_from_irradiance(berlin_10kwp, weather.tz_localize(None), grid)


def test_naive_times_raise(berlin_10kwp: PvSystemSpec) -> None:
    with pytest.raises(ValueError, match="naive"):
        clear_sky_weather(berlin_10kwp, pd.date_range("2020-06-21", periods=3, freq="h"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dc_peak_kw", 0.0),
        ("tilt_deg", 95.0),
        ("azimuth_deg", -10.0),
        ("latitude_deg", 91.0),
        ("losses_pct", 120.0),
        ("ac_limit_kw", -1.0),
        ("dc_peak_kw", float("nan")),
        ("timezone", "Europe/Atlantis"),
    ],
)
def test_spec_validation_names_the_field(
    berlin_10kwp: PvSystemSpec, field: str, value: float | str
) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(berlin_10kwp, **{field: value})


def test_linke_turbidity_follows_monthly_climatology(berlin_10kwp: PvSystemSpec) -> None:
    days = pd.date_range("2019-01-01", "2019-12-31", freq="D", tz="UTC")
    turbidity = linke_turbidity(berlin_10kwp, days).to_numpy()
    monthly = pvlib.clearsky.lookup_linke_turbidity(
        pd.DatetimeIndex([f"2019-{m:02d}-15" for m in range(1, 13)], tz="UTC"),
        berlin_10kwp.latitude_deg,
        berlin_10kwp.longitude_deg,
        interp_turbidity=False,
    ).to_numpy()
    assert monthly.min() <= turbidity.min() and turbidity.max() <= monthly.max()
    assert np.abs(np.diff(turbidity)).max() < 0.1  # daily interpolation, no month steps
    # 2019-02-14 is day 45, the middle of February in a non-leap year
    assert turbidity[44] == pytest.approx(monthly[1])


def local_day(day: date, zone: ZoneInfo, slot_minutes: int) -> SlotGrid:
    """The slots of one civil day in ``zone``, from local midnight to local midnight."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return SlotGrid.between(start, end, slot_minutes)


@pytest.mark.parametrize(("day", "hours"), [(date(2020, 3, 29), 23), (date(2020, 10, 25), 25)])
def test_dst_days_in_the_site_zone(berlin_10kwp: PvSystemSpec, day: date, hours: int) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    zoned = dataclasses.replace(berlin_10kwp, timezone="Europe/Berlin")
    grid = local_day(day, berlin, 15)
    assert grid.slots == hours * 4
    pv_kw = clear_sky_pv_kw(zoned, grid)
    # the zone labels the site; the instants and so the power are those of UTC
    np.testing.assert_array_equal(pv_kw, clear_sky_pv_kw(berlin_10kwp, grid))
    # energy of the local day = energy of the same UTC instants on an hourly grid
    hourly = SlotGrid(grid.start, 60, hours)
    assert pv_kw.sum() * grid.dt_h == pytest.approx(clear_sky_pv_kw(zoned, hourly).sum(), rel=0.01)


def test_peak_moves_one_local_hour_across_the_spring_change(berlin_10kwp: PvSystemSpec) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    zoned = dataclasses.replace(berlin_10kwp, timezone="Europe/Berlin")
    peaks_local_h = []
    for day in (date(2020, 3, 28), date(2020, 3, 30)):
        grid = local_day(day, berlin, 5)
        peak = grid.slot_start(int(np.argmax(clear_sky_pv_kw(zoned, grid)))).astimezone(berlin)
        peaks_local_h.append(peak.hour + peak.minute / 60)
    assert peaks_local_h[1] - peaks_local_h[0] == pytest.approx(1.0, abs=0.2)
