"""Weather inputs: TMY3 files pvlib ships, weather CSVs (irradiance or cloud cover), DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pvlib
import pytest

from forecasting.resample import CoverageError
from forecasting.solar import PvSystemSpec, ac_power_kw, clear_sky_weather
from forecasting.timegrid import SlotGrid
from forecasting.weather import (
    IRRADIANCE_COLUMNS,
    VARIABLE_MAP,
    pv_kw_from_weather,
    read_tmy3,
    read_weather_csv,
)

GREENSBORO = Path(pvlib.__file__).parent / "data" / "723170TYA.CSV"
BERLIN = ZoneInfo("Europe/Berlin")
TO_CSV = {ours: theirs for theirs, ours in VARIABLE_MAP.items()}


@pytest.fixture(scope="module")
def tmy() -> tuple[pd.DataFrame, PvSystemSpec]:
    weather, station = read_tmy3(GREENSBORO, 2019)
    spec = PvSystemSpec(
        station.latitude_deg, station.longitude_deg, station.altitude_m, 10.0, 25.0, 180.0
    )
    return weather, spec


def write_csv(path: Path, weather: pd.DataFrame, times: list[str]) -> Path:
    frame = weather.rename(columns=TO_CSV).reset_index(drop=True)
    frame.insert(0, "time", times)
    frame.to_csv(path, index=False)
    return path


def hourly_clear_sky(spec: PvSystemSpec, start: datetime, hours: int) -> pd.DataFrame:
    """Clear-sky weather for hourly intervals, sampled at each interval's middle."""
    starts = pd.date_range(start, periods=hours, freq="h")
    return clear_sky_weather(spec, starts + pd.Timedelta(minutes=30)).set_axis(starts, axis=0)


# --- TMY3 ------------------------------------------------------------------------------


def test_tmy3_is_read_into_the_glossary_on_interval_starts(
    tmy: tuple[pd.DataFrame, PvSystemSpec],
) -> None:
    weather, _ = tmy
    _, station = read_tmy3(GREENSBORO, 2019)
    assert station.name == "GREENSBORO PIEDMONT TRIAD INT"
    assert (station.latitude_deg, station.longitude_deg, station.utc_offset_h) == (
        36.1,
        -79.95,
        -5.0,
    )
    assert len(weather) == 8760
    assert str(weather.index.tz) == "UTC"
    # the first row ends at 01:00 local standard time (UTC-5): it starts at 05:00Z
    assert weather.index[0] == pd.Timestamp("2019-01-01T05:00Z")
    assert (weather.index.to_series().diff().iloc[1:] == pd.Timedelta(hours=1)).all()
    assert {*IRRADIANCE_COLUMNS, "temp_air_c", "wind_speed_m_per_s", "cloud_cover_pct"} == set(
        weather.columns
    )
    assert weather["cloud_cover_pct"].between(0, 100).all()
    raw, _ = pvlib.iotools.read_tmy3(str(GREENSBORO), coerce_year=2019, map_variables=True)
    np.testing.assert_array_equal(weather["ghi_w_per_m2"], raw["ghi"])
    np.testing.assert_array_equal(weather["cloud_cover_pct"], raw["OpqCld (tenths)"] * 10)


def test_tmy_hourly_pv_is_pvwatts_at_the_middle_of_each_hour(
    tmy: tuple[pd.DataFrame, PvSystemSpec],
) -> None:
    weather, spec = tmy
    grid = SlotGrid(datetime(2019, 6, 21, tzinfo=UTC), 60, 24)
    rows = weather.loc[grid.index]
    expected = ac_power_kw(spec, rows.set_axis(rows.index + pd.Timedelta(minutes=30), axis=0))
    np.testing.assert_allclose(pv_kw_from_weather(spec, weather, grid), expected, rtol=1e-12)
    assert expected.max() > 5  # a sunny June noon on 10 kWp


@pytest.mark.parametrize("slot_minutes", [15, 30, 120, 360])
def test_tmy_slot_means_conserve_energy(
    tmy: tuple[pd.DataFrame, PvSystemSpec], slot_minutes: int
) -> None:
    weather, spec = tmy
    day = datetime(2019, 6, 21, tzinfo=UTC)
    hourly = pv_kw_from_weather(spec, weather, SlotGrid(day, 60, 48))
    grid = SlotGrid(day, slot_minutes, 48 * 60 // slot_minutes)
    pv_kw = pv_kw_from_weather(spec, weather, grid)
    assert pv_kw.sum() * grid.dt_h == pytest.approx(hourly.sum(), rel=1e-12)
    if slot_minutes < 60:  # a finer slot gets its hour's mean, no invented shape
        np.testing.assert_allclose(pv_kw, np.repeat(hourly, 60 // slot_minutes))
    else:
        np.testing.assert_allclose(pv_kw, hourly.reshape(-1, slot_minutes // 60).mean(axis=1))


def test_tmy_cloud_cover_drives_the_cloud_model(tmy: tuple[pd.DataFrame, PvSystemSpec]) -> None:
    weather, spec = tmy
    grid = SlotGrid(datetime(2019, 6, 1, tzinfo=UTC), 60, 24 * 14)
    measured = pv_kw_from_weather(spec, weather, grid)
    modelled = pv_kw_from_weather(spec, weather.drop(columns=list(IRRADIANCE_COLUMNS)), grid)
    assert modelled.sum() == pytest.approx(measured.sum(), rel=0.15)
    assert np.corrcoef(modelled, measured)[0, 1] > 0.9


def test_a_leap_day_missing_from_a_tmy_is_a_gap(tmy: tuple[pd.DataFrame, PvSystemSpec]) -> None:
    _, spec = tmy
    weather, _ = read_tmy3(GREENSBORO, 2020)
    with pytest.raises(CoverageError, match="2020-02-29"):
        pv_kw_from_weather(spec, weather, SlotGrid(datetime(2020, 2, 29, tzinfo=UTC), 60, 24))


# --- weather CSV ----------------------------------------------------------------------------


def test_weather_csv_irradiance_round_trip(tmp_path: Path, berlin_10kwp: PvSystemSpec) -> None:
    start = datetime(2020, 6, 21, tzinfo=UTC)
    weather = hourly_clear_sky(berlin_10kwp, start, 24)
    times = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in weather.index]
    path = write_csv(tmp_path / "w.csv", weather, times)
    read = read_weather_csv(path)
    pd.testing.assert_frame_equal(read, weather, check_names=False, check_freq=False)
    grid = SlotGrid(start, 30, 48)
    assert pv_kw_from_weather(berlin_10kwp, read, grid).max() > 5


def test_local_times_across_spring_dst_change_are_the_same_instants(
    tmp_path: Path, berlin_10kwp: PvSystemSpec
) -> None:
    # Berlin's local day 2020-03-29 has 23 hours: 02:00 CET jumps to 03:00 CEST at 01:00Z.
    start = datetime(2020, 3, 29, tzinfo=BERLIN).astimezone(UTC)  # 2020-03-28T23:00Z
    end = datetime(2020, 3, 30, tzinfo=BERLIN).astimezone(UTC)  # 2020-03-29T22:00Z
    hours = round((end - start) / timedelta(hours=1))
    assert hours == 23
    weather = hourly_clear_sky(berlin_10kwp, start, hours)
    local = [t.astimezone(BERLIN).isoformat() for t in weather.index.to_pydatetime()]
    assert local[1:4] == [
        "2020-03-29T01:00:00+01:00",
        "2020-03-29T03:00:00+02:00",
        "2020-03-29T04:00:00+02:00",
    ]
    utc = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in weather.index]
    from_local = read_weather_csv(write_csv(tmp_path / "local.csv", weather, local))
    from_utc = read_weather_csv(write_csv(tmp_path / "utc.csv", weather, utc))
    assert from_local.index.equals(from_utc.index)
    zoned = PvSystemSpec(**{**berlin_10kwp.__dict__, "timezone": "Europe/Berlin"})
    grid = SlotGrid.between(start, end, 15)
    assert grid.slots == 92
    np.testing.assert_array_equal(
        pv_kw_from_weather(zoned, from_local, grid),
        pv_kw_from_weather(berlin_10kwp, from_utc, grid),
    )


def test_repeated_local_hour_in_autumn_is_two_instants(tmp_path: Path) -> None:
    times = ["2020-10-25T01:00:00+02:00", "2020-10-25T02:00:00+02:00", "2020-10-25T02:00:00+01:00"]
    rows = pd.DataFrame(
        {"cloud_cover": [10.0, 20.0, 30.0], "temp_air": [8.0] * 3, "wind_speed": [2.0] * 3}
    )
    rows.insert(0, "time", times)
    rows.to_csv(tmp_path / "autumn.csv", index=False)
    weather = read_weather_csv(tmp_path / "autumn.csv")
    assert list(weather.index) == list(
        pd.DatetimeIndex(["2020-10-24T23:00Z", "2020-10-25T00:00Z", "2020-10-25T01:00Z"])
    )


def test_cloud_cover_csv_gives_cloud_model_pv(tmp_path: Path, berlin_10kwp: PvSystemSpec) -> None:
    starts = pd.date_range("2020-06-21T00:00Z", periods=24, freq="h")
    cover = np.where(starts.hour < 12, 0.0, 100.0)
    frame = pd.DataFrame({"time": starts.strftime("%Y-%m-%dT%H:%M:%SZ"), "cloud_cover": cover})
    frame = frame.assign(temp_air=20.0, wind_speed=1.0)
    frame.to_csv(tmp_path / "clouds.csv", index=False)
    weather = read_weather_csv(tmp_path / "clouds.csv")
    grid = SlotGrid(starts[0].to_pydatetime(), 60, 24)
    pv_kw = pv_kw_from_weather(berlin_10kwp, weather, grid)
    # solar noon in Berlin is near 11:10Z: the clear morning outshines the overcast afternoon
    assert pv_kw[9] > 2 * pv_kw[13]


def write_rows(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time,cloud_cover,temp_air,wind_speed\n2020-06-21T00:00:00,10,20,1\n", "naive"),
        (
            "time,cloud_cover,temp_air,wind_speed,humidity\n2020-06-21T00:00Z,10,20,1,50\n",
            "humidity",
        ),
        ("time,cloud_cover,temp_air,wind_speed\n2020-06-21T00:00Z,120,20,1\n", "cloud_cover_pct"),
        ("time,ghi,dni,temp_air,wind_speed\n2020-06-21T00:00Z,10,20,1,1\n", "dhi_w_per_m2"),
        ("time,cloud_cover,temp_air\n2020-06-21T00:00Z,10,20\n", "wind_speed_m_per_s"),
        ("time,cloud_cover,temp_air,wind_speed\n2020-06-21T00:00Z,,20,1\n", "cloud_cover_pct"),
        ("cloud_cover,temp_air,wind_speed\n10,20,1\n", "time"),
    ],
)
def test_bad_weather_csv_is_refused_naming_the_column(
    tmp_path: Path, text: str, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        read_weather_csv(write_rows(tmp_path / "bad.csv", text))


def test_a_gap_in_the_weather_is_refused(tmp_path: Path, berlin_10kwp: PvSystemSpec) -> None:
    start = datetime(2020, 6, 21, tzinfo=UTC)
    weather = hourly_clear_sky(berlin_10kwp, start, 24).drop(
        index=pd.Timestamp("2020-06-21T10:00Z")
    )
    times = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in weather.index]
    read = read_weather_csv(write_csv(tmp_path / "gap.csv", weather, times))
    with pytest.raises(CoverageError, match="2020-06-21T10:00Z to 2020-06-21T11:00Z"):
        pv_kw_from_weather(berlin_10kwp, read, SlotGrid(start, 15, 96))
    morning = pv_kw_from_weather(berlin_10kwp, read, SlotGrid(start, 15, 40))
    assert morning.shape == (40,)
