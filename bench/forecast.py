"""Forecast skill on real data: PV against pvlib's TMY3 files, carbon against 2020 grid data.

`idlefleet bench forecast [--shared-data DIR]` prints MAE and RMSE of every forecaster and
its skill against persistence (1 - error / persistence error), per PV station and per
grid region, then a last line `pv_skill=… pv_clear_sky_skill=… carbon_skill=…`.

PV: a 10 kWp array facing south at 25° tilt at each TMY3 station pvlib ships (Greensboro
NC, Sand Point AK), hourly slots from 3 January to 30 December (UTC). The truth is PV from the
file's own GHI, DNI, DHI, air temperature and wind. Persistence is that PV 24 hours
earlier; "clear-sky" knows no weather; "cloud-cover" runs the cloud-cover model on the
file's observed opaque sky cover, i.e. a perfect cloud forecast: it scores the
cloud-to-irradiance model, not a weather forecast. TMY3 irradiance is itself largely
modelled from sky cover for most stations (NSRDB 1991-2005), which flatters that model.
`pv_skill` is the cloud-cover model's MAE skill averaged over stations.

Carbon: day-ahead forecasts issued at each UTC midnight, 30-minute slots. With
`--shared-data` (the directory of ger_ci.csv, gb_ci.csv, fr_ci.csv) the test period is
July-December 2020, held out from the January-June data the forecaster settings were
chosen on; without it, June 2020 from the shipped excerpt. `carbon_skill` is the MAE skill
of the kept forecaster (`forecasting.carbon_forecast.BEST`) averaged over regions.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pvlib

from forecasting.carbon import REGIONS, intensity_source, load_intensity_series
from forecasting.carbon_forecast import BEST, FORECASTERS, Persistence, backtest
from forecasting.skill import ForecastError
from forecasting.solar import PvSystemSpec, clear_sky_pv_kw
from forecasting.timegrid import SlotGrid
from forecasting.weather import IRRADIANCE_COLUMNS, pv_kw_from_weather, read_tmy3

TMY3_FILES = ("723170TYA.CSV", "703165TY.csv")
TMY_YEAR = 2019
#: Hourly slots the TMY3 files cover in UTC (they start at local midnight, west of Greenwich).
PV_YEAR = SlotGrid(datetime(TMY_YEAR, 1, 2, tzinfo=UTC), 60, 363 * 24)
CARBON_SLOT_MINUTES = 30


def pv_errors(path: Path) -> tuple[str, dict[str, ForecastError]]:
    """Errors of each PV forecaster at one TMY3 station [kW], and the station's name."""
    weather, station = read_tmy3(path, TMY_YEAR)
    spec = PvSystemSpec(
        latitude_deg=station.latitude_deg,
        longitude_deg=station.longitude_deg,
        altitude_m=station.altitude_m,
        dc_peak_kw=10.0,
        tilt_deg=25.0,
        azimuth_deg=180.0,
    )
    # Scored from the second day on: persistence needs the day before.
    days = SlotGrid(PV_YEAR.start + PV_YEAR.slot * 24, 60, PV_YEAR.slots - 24)
    actual = pv_kw_from_weather(spec, weather, PV_YEAR, source=path.name)
    cloudy = weather.drop(columns=list(IRRADIANCE_COLUMNS))
    forecasts = {
        "persistence": actual[:-24],
        "clear-sky": clear_sky_pv_kw(spec, days),
        "cloud-cover": pv_kw_from_weather(spec, cloudy, days, source=path.name),
    }
    return station.name, {name: ForecastError.of(f, actual[24:]) for name, f in forecasts.items()}


def carbon_errors(region: str, data_dir: Path | None) -> dict[str, ForecastError]:
    """Errors of each carbon forecaster in ``region`` over the test period [gCO2/kWh]."""
    if data_dir is None:
        start, days = datetime(2020, 6, 1, tzinfo=UTC), 30
    else:
        start, days = datetime(2020, 7, 1, tzinfo=UTC), 184
    grid = SlotGrid(start, CARBON_SLOT_MINUTES, days * 24 * 60 // CARBON_SLOT_MINUTES)
    series = load_intensity_series(region, data_dir)
    result = backtest(series, grid, FORECASTERS, intensity_source(region, data_dir))
    return {
        name: ForecastError.of(forecast, result.actual_g_per_kwh)
        for name, forecast in result.forecasts_g_per_kwh.items()
    }


def report(scope: str, unit: str, errors: dict[str, ForecastError], baseline: str) -> None:
    for name, error in errors.items():
        skill_mae, skill_rmse = error.skill(errors[baseline])
        print(
            f"{scope:<36}{name:<16}mae_{unit}={error.mae:8.3f}  rmse_{unit}={error.rmse:8.3f}"
            f"  skill_mae={skill_mae:6.3f}  skill_rmse={skill_rmse:6.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idlefleet bench forecast", description=__doc__)
    parser.add_argument("--shared-data", help="directory with ger_ci.csv, gb_ci.csv, fr_ci.csv")
    args = parser.parse_args(argv)
    data_dir = Path(args.shared_data) if args.shared_data else None

    pv_skills, clear_skills = [], []
    for name in TMY3_FILES:
        station, errors = pv_errors(Path(pvlib.__file__).parent / "data" / name)
        report(f"pv {station}", "kw", errors, "persistence")
        pv_skills.append(errors["cloud-cover"].skill(errors["persistence"])[0])
        clear_skills.append(errors["clear-sky"].skill(errors["persistence"])[0])

    carbon_skills = []
    for region in REGIONS:
        errors = carbon_errors(region, data_dir)
        report(f"carbon {region}", "g_per_kwh", errors, Persistence.name)
        carbon_skills.append(errors[BEST.name].skill(errors[Persistence.name])[0])
    period = "June 2020 (excerpt)" if data_dir is None else "July-December 2020 (held out)"
    print(f"carbon: {BEST.name} kept; scored on {period}")
    print(
        f"pv_skill={np.mean(pv_skills):.3f} pv_clear_sky_skill={np.mean(clear_skills):.3f} "
        f"carbon_skill={np.mean(carbon_skills):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
