"""Weather for PV: a CSV of measured or forecast weather, or a TMY3 file, as slot-mean PV.

Each source's columns are renamed to our glossary by ONE variable map:

* a weather CSV (``VARIABLE_MAP``): pvlib's variable names, one row per interval,
  ``time`` its START as ISO 8601 with an offset (naive times are refused; offsets may
  change across a DST switch), then ``ghi``, ``dni``, ``dhi`` [W/m²], ``temp_air`` [°C],
  ``wind_speed`` [m/s], or ``cloud_cover`` [%] in place of the three irradiances;
* a TMY3 file (``TMY3_VARIABLE_MAP``), read by ``pvlib.iotools.read_tmy3``. TMY3 rows
  are hour-ENDING in local standard time (irradiance is the energy of the preceding
  hour), so they are relabelled to interval starts. Cloud cover is taken from the opaque
  sky cover (``OpqCld``, tenths): thin cloud counted in total sky cover hardly dims the
  sun, and with total cover the cloud-cover model was far worse on pvlib's TMY3 files.

Glossary frames are indexed by interval starts [UTC] with ``temp_air_c``,
``wind_speed_m_per_s`` and either the irradiances ``ghi_w_per_m2``, ``dni_w_per_m2``,
``dhi_w_per_m2`` or ``cloud_cover_pct``; ``pv_kw_from_weather`` turns them into mean AC
power per slot:

* irradiance: PV at the middle of each interval from its irradiance, held over the
  interval, then time-weighted slot means (a slot finer than the data gets the
  interval's mean; no shape inside an interval is invented);
* cloud cover: clear-sky irradiance at sub-step midpoints of every slot, dimmed by the
  cloud cover that holds then (``forecasting.cloud``), then slot means.

Rows must be evenly spaced: a missing row inside the requested grid is a gap and raises
``CoverageError`` naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pvlib

from forecasting.cloud import cloud_cover_weather
from forecasting.resample import held_values, hold_means, regular_spacing
from forecasting.solar import WEATHER_COLUMNS, PvSystemSpec, ac_power_kw, pv_kw_from_irradiance
from forecasting.timegrid import SlotGrid, parse_utc_times, require_utc_index

IRRADIANCE_COLUMNS: Final = ("ghi_w_per_m2", "dni_w_per_m2", "dhi_w_per_m2")
AIR_COLUMNS: Final = ("temp_air_c", "wind_speed_m_per_s")
CLOUD_COLUMN: Final = "cloud_cover_pct"

#: Weather CSV column (pvlib's names) -> glossary name.
VARIABLE_MAP: Final[dict[str, str]] = {
    "time": "interval_start",
    "ghi": "ghi_w_per_m2",
    "dni": "dni_w_per_m2",
    "dhi": "dhi_w_per_m2",
    "temp_air": "temp_air_c",
    "wind_speed": "wind_speed_m_per_s",
    "cloud_cover": "cloud_cover_pct",
}
#: Column of ``pvlib.iotools.read_tmy3(map_variables=True)`` -> glossary name.
TMY3_VARIABLE_MAP: Final[dict[str, str]] = {
    "ghi": "ghi_w_per_m2",
    "dni": "dni_w_per_m2",
    "dhi": "dhi_w_per_m2",
    "temp_air": "temp_air_c",
    "wind_speed": "wind_speed_m_per_s",
    "OpqCld (tenths)": "opaque_cloud_cover_tenths",
}
TMY3_ROW_SPAN: Final = timedelta(hours=1)

# Plausible physical ranges, glossary column -> (low, high).
_RANGES: Final[dict[str, tuple[float, float]]] = {
    "ghi_w_per_m2": (0.0, 1500.0),
    "dni_w_per_m2": (0.0, 1500.0),
    "dhi_w_per_m2": (0.0, 1000.0),
    "temp_air_c": (-90.0, 70.0),
    "wind_speed_m_per_s": (0.0, 120.0),
    "cloud_cover_pct": (0.0, 100.0),
}


@dataclass(frozen=True)
class TmyStation:
    """Where a TMY3 file was measured."""

    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    utc_offset_h: float


def read_weather_csv(path: Path) -> pd.DataFrame:
    """A weather CSV (see the module docstring) as a validated glossary frame."""
    frame = pd.read_csv(path)
    unknown = sorted(set(frame.columns) - set(VARIABLE_MAP))
    if unknown:
        raise ValueError(f"{path}: unknown column(s) {unknown}; expected {list(VARIABLE_MAP)}")
    if "time" not in frame.columns:
        raise ValueError(f"{path}: missing column 'time' (interval start, ISO 8601 with offset)")
    frame = frame.rename(columns=VARIABLE_MAP)
    times = parse_utc_times(frame.pop("interval_start"), f"{path}: time")
    return require_weather(frame.set_axis(times, axis=0).astype(float), str(path))


def read_tmy3(path: Path, year: int) -> tuple[pd.DataFrame, TmyStation]:
    """A TMY3 file as a glossary frame on interval starts [UTC], its rows dated in ``year``.

    The frame holds the irradiances, air temperature, wind speed and ``cloud_cover_pct``
    (opaque sky cover). Months of a TMY come from different years; ``year`` relabels them
    (so a leap ``year`` has no 29 February: a grid over that day is refused as a gap).
    """
    data, meta = pvlib.iotools.read_tmy3(str(path), coerce_year=year, map_variables=True)
    frame = data[list(TMY3_VARIABLE_MAP)].rename(columns=TMY3_VARIABLE_MAP).astype(float)
    frame[CLOUD_COLUMN] = frame.pop("opaque_cloud_cover_tenths") * 10.0
    starts = (data.index - TMY3_ROW_SPAN).tz_convert("UTC")
    station = TmyStation(
        name=str(meta["Name"]).strip('"'),
        latitude_deg=float(meta["latitude"]),
        longitude_deg=float(meta["longitude"]),
        altitude_m=float(meta["altitude"]),
        utc_offset_h=float(meta["TZ"]),
    )
    return require_weather(frame.set_axis(starts, axis=0), str(path)), station


def require_weather(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` if it is a valid glossary weather frame; else raise naming the column."""
    times = require_utc_index(frame.index, f"{source} index")
    has_irradiance = [c in frame.columns for c in IRRADIANCE_COLUMNS]
    if not all(has_irradiance) and (any(has_irradiance) or CLOUD_COLUMN not in frame.columns):
        raise ValueError(
            f"{source}: need all of {list(IRRADIANCE_COLUMNS)} or {CLOUD_COLUMN!r}, "
            f"has {list(frame.columns)}"
        )
    missing = [c for c in AIR_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}")
    unknown = sorted(set(frame.columns) - set(_RANGES))
    if unknown:
        raise ValueError(f"{source}: unknown column(s) {unknown}")
    for column in frame.columns:
        low, high = _RANGES[column]
        values = frame[column].to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values >= low) & (values <= high))
        if bad.any():
            at = times[bad][0].isoformat()
            raise ValueError(
                f"{source}: {column} must be within [{low}, {high}], got {values[bad][0]} at {at}"
            )
    return frame


def pv_kw_from_weather(
    spec: PvSystemSpec,
    weather: pd.DataFrame,
    grid: SlotGrid,
    source: str = "weather",
    substep_minutes: int = 5,
) -> np.ndarray:
    """Mean AC power per slot [kW] from a glossary weather frame (irradiance wins if both).

    ``source`` names the data in errors; ``substep_minutes`` is the sampling step of the
    cloud-cover path [min], as in ``solar.clear_sky_pv_kw``.
    """
    weather = require_weather(weather, source)
    spacing = regular_spacing(weather.index, source)
    if all(c in weather.columns for c in IRRADIANCE_COLUMNS):
        middle = weather[list(WEATHER_COLUMNS)].set_axis(weather.index + spacing / 2, axis=0)
        pv_kw = pd.Series(ac_power_kw(spec, middle).to_numpy(), index=weather.index)
        return hold_means(pv_kw, grid, spacing, source)
    times = grid.sample_times(math.ceil(grid.slot_minutes / substep_minutes))
    held = held_values(weather[[CLOUD_COLUMN, *AIR_COLUMNS]], times, spacing, source)
    cloudy = cloud_cover_weather(
        spec,
        times,
        held[CLOUD_COLUMN].to_numpy(),
        held["temp_air_c"].to_numpy(),
        held["wind_speed_m_per_s"].to_numpy(),
    )
    return pv_kw_from_irradiance(spec, cloudy, grid)
