"""`idlefleet forecast solar|carbon|publish`: CSV out, exit 2 on bad input, real broker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
import pytest
from kafka import KafkaConsumer

from forecasting.carbon import intensity_on_grid
from forecasting.solar import PvSystemSpec, clear_sky_pv_kw
from forecasting.timegrid import SlotGrid
from idlefleet.cli import main
from idlefleet.commands.serve import default_sites
from streams.clients import KafkaSettings
from streams.messages import GridSignal, SolarForecast
from streams.serde import decode
from streams.topics import Stream

TMY = str(Path(pvlib.__file__).parent / "data" / "723170TYA.CSV")
BERLIN = ["--lat", "52.52", "--lon", "13.405", "--altitude", "34", "--peak-kw", "10"]
GRID = ["--start", "2020-06-10T00:00Z", "--slots", "96", "--slot-minutes", "15"]
NAIVE_GRID = ["--start", "2020-06-10T00:00", "--slots", "4", "--slot-minutes", "15"]
MARCH_GRID = ["--start", "2020-03-01T00:00Z", "--slots", "4", "--slot-minutes", "60"]
JUNE_10 = SlotGrid(datetime(2020, 6, 10, tzinfo=UTC), 15, 96)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["forecast", *args])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(text: str, column: str) -> pd.Series:
    lines = text.splitlines()
    assert lines[0] == f"slot_start,{column}"
    rows = [line.split(",") for line in lines[1:]]
    index = pd.DatetimeIndex([t for t, _ in rows])
    return pd.Series([float(v) for _, v in rows], index=index)


def test_solar_clear_sky_prints_slot_means(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "solar", *BERLIN, "--tilt", "35", "--clear-sky", *GRID)
    assert code == 0
    pv_kw = read_csv(out, "pv_kw")
    assert pv_kw.index[0] == pd.Timestamp("2020-06-10T00:00Z") and len(pv_kw) == 96
    assert out.splitlines()[1] == "2020-06-10T00:00:00Z,0.0000"
    spec = PvSystemSpec(52.52, 13.405, 34.0, 10.0, 35.0, 180.0)
    np.testing.assert_allclose(pv_kw, clear_sky_pv_kw(spec, JUNE_10), atol=5e-5)


def test_solar_from_tmy_and_from_weather_csv(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    greensboro = ["--lat", "36.1", "--lon", "-79.95", "--peak-kw", "10", "--tz", "America/New_York"]
    day = ["--start", "2019-06-21T00:00-05:00", "--slots", "24", "--slot-minutes", "60"]
    code, out, _ = run(capsys, "solar", *greensboro, *day, "--tmy", TMY)
    assert code == 0
    from_tmy = read_csv(out, "pv_kw")
    assert from_tmy.index[0] == pd.Timestamp("2019-06-21T05:00Z")
    assert from_tmy.max() > 4 and from_tmy.iloc[0] == 0

    csv = tmp_path / "clouds.csv"
    times = pd.date_range("2020-06-10T00:00Z", periods=24, freq="h")
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "cloud_cover": 50.0})
    frame.assign(temp_air=18.0, wind_speed=3.0).to_csv(csv, index=False)
    code, out, _ = run(capsys, "solar", *BERLIN, *GRID, "--weather", str(csv))
    assert code == 0
    cloudy = read_csv(out, "pv_kw")
    code, out, _ = run(capsys, "solar", *BERLIN, *GRID, "--clear-sky")
    assert 0.3 < cloudy.sum() / read_csv(out, "pv_kw").sum() < 0.8


def test_carbon_forecast_and_actual(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "carbon", "--region", "DE", *GRID, "--actual")
    assert code == 0 and err == ""
    actual = read_csv(out, "intensity_g_per_kwh")
    np.testing.assert_allclose(actual, intensity_on_grid("DE", JUNE_10), atol=5e-4)
    code, out, err = run(capsys, "carbon", "--region", "DE", *GRID)
    assert code == 0 and err == ""
    forecast = read_csv(out, "intensity_g_per_kwh")
    assert forecast.index.equals(actual.index)
    assert not np.allclose(forecast, actual)
    assert (forecast - actual).abs().mean() < 0.25 * actual.mean()


def test_carbon_with_short_history_says_which_forecaster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    grid = ["--start", "2020-05-20T00:00Z", "--slots", "4", "--slot-minutes", "60"]
    code, out, err = run(capsys, "carbon", "--region", "FR", *grid)
    assert code == 0 and len(out.splitlines()) == 5
    assert "used persistence" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["solar", "--lat", "91", "--lon", "0", "--peak-kw", "1", "--clear-sky", *GRID],
            "latitude",
        ),
        (["solar", *BERLIN, "--clear-sky", *NAIVE_GRID], "naive"),
        (["solar", *BERLIN, "--tz", "Berlin", "--clear-sky", *GRID], "timezone"),
        (["solar", *BERLIN, "--tmy", TMY, *GRID], "GREENSBORO"),
        (["solar", *BERLIN, "--weather", "/nonexistent.csv", *GRID], "nonexistent"),
        (["carbon", "--region", "CAISO", *GRID], "region must be one of"),
        (["carbon", "--region", "GB", *MARCH_GRID, "--actual"], "region GB"),
        (["carbon", "--region", "GB", *GRID[:-1], "7"], "slot_minutes"),
        (["publish", "--slot-minutes", "15", "--every-minutes", "20", "--once"], "multiple"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_a_gap_in_the_weather_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    times = pd.date_range("2020-06-10T00:00Z", periods=24, freq="h").delete(12)
    frame = pd.DataFrame({"time": times.strftime("%Y-%m-%dT%H:%M:%SZ"), "cloud_cover": 10.0})
    frame.assign(temp_air=18.0, wind_speed=3.0).to_csv(tmp_path / "gap.csv", index=False)
    code, out, err = run(capsys, "solar", *BERLIN, *GRID, "--weather", str(tmp_path / "gap.csv"))
    assert (code, out) == (2, "")
    assert "2020-06-10T12:00Z" in err


def test_publish_once_delivers_decodable_forecasts_signed_by_the_publisher(
    capsys: pytest.CaptureFixture[str],
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDLEFLEET_STATE_DIR", str(tmp_path))
    code, _, err = run(
        capsys,
        "publish",
        "--bootstrap-servers",
        kafka_settings.bootstrap_servers,
        "--topic-prefix",
        kafka_settings.topic_prefix,
        "--start",
        "2020-06-10T00:00Z",
        "--once",
        "--authority-key",
        str(tmp_path / "authority.key"),  # a lab: the publisher enrolls its own key
    )
    assert code == 0, err
    assert (tmp_path / "forecast.key").exists()
    sites = default_sites()
    regions = {site.region for site in sites}
    solar = read_all(kafka_settings, Stream.SOLAR_FORECASTS, len(sites))
    grid = read_all(kafka_settings, Stream.GRID_SIGNALS, len(regions))
    assert {m.site_id for m in solar if isinstance(m, SolarForecast)} == {s.site_id for s in sites}
    signals = [m for m in grid if isinstance(m, GridSignal)]
    assert {s.region for s in signals} == regions
    for signal in signals:
        assert signal.kind == "forecast"
        assert signal.start == datetime(2020, 6, 10, tzinfo=UTC)
        assert len(signal.intensity_g_per_kwh) == 96 and signal.slot_minutes == 15
        assert signal.source.startswith("lagged-ridge day-ahead")


def read_all(settings: KafkaSettings, stream: Stream, count: int) -> list[object]:
    consumer = KafkaConsumer(
        settings.topics.name(stream),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    messages = []
    for record in consumer:
        assert "idf-proof" in {name for name, _ in record.headers}
        messages.append(decode(stream, record.value))
        if len(messages) == count:
            break
    consumer.close()
    assert len(messages) == count
    return messages
