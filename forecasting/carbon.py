"""Average (location-based) grid carbon intensity, 2020, for DE, GB and FR.

The values are the *average* intensity of the electricity generated (plus imports) in each
region, in lifecycle gCO2-eq per kWh, as published with Wiesner et al., "Let's Wait
Awhile", Middleware '21 (doi:10.1145/3464298.3493399), from ENTSO-E generation data. They
are not marginal emission factors and must not be used as such.

Sources
-------
* Default: the excerpt shipped in ``forecasting/data/`` (2020-05-17T00:00Z up to
  2020-07-01T00:00Z in two files per region, native resolution), see
  ``forecasting/data/README.md``.
* ``data_dir``: a directory holding the full source files ``ger_ci.csv``, ``gb_ci.csv`` and
  ``fr_ci.csv`` (in this project: ``../shared/data/carbon-intensity/``).

Assumptions (the source documents neither)
-------------------------------------------
* Source timestamps are UTC (inferred: no DST gap or duplicate, intensity dips at solar
  noon UTC).
* A timestamp is the START of its interval: a value holds from its timestamp until the
  next one (``forecasting.resample``). A spacing above ``MAX_SAMPLE_SPACING`` (1 h) is
  missing data. A shorter irregularity, such as the two missing German quarter-hours on
  2020-12-19, is bridged by holding the previous value.

On a slot grid, a slot's value is the time-weighted mean of this step function over the
slot: the mean of the finer samples inside it, or the held value of a coarser sample.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from forecasting.regions import REGIONS, Region
from forecasting.resample import CoverageError, hold_means
from forecasting.timegrid import SlotGrid, parse_utc_times

#: Full source files (Let's Wait Awhile repository, ``data/``) by region.
SOURCE_FILES: Final[dict[str, str]] = {"DE": "ger_ci.csv", "GB": "gb_ci.csv", "FR": "fr_ci.csv"}
#: Shipped excerpts in ``forecasting/data/`` by region, in time order: two weeks of May
#: 2020 as look-back for day-ahead forecasts, then June 2020 (from 2020-05-31).
EXCERPT_FILES: Final[dict[str, tuple[str, ...]]] = {
    region: tuple(f"intensity_{region.lower()}_2020-{month}.csv" for month in ("05", "06"))
    for region in REGIONS
}
#: Source column -> glossary name.
VARIABLE_MAP: Final[dict[str, str]] = {
    "Time": "slot_start",
    "Carbon Intensity": "intensity_g_per_kwh",
}
MAX_SAMPLE_SPACING: Final = timedelta(hours=1)


class IntensityCoverageError(CoverageError):
    """The intensity data do not cover a requested period."""


def read_source_csv(path: Path) -> pd.Series:
    """Read a Let's-Wait-Awhile ``*_ci.csv`` (naive timestamps, taken as UTC) [gCO2/kWh]."""
    frame = _read_renamed(path)
    times = pd.to_datetime(frame["slot_start"], format="ISO8601")
    if times.dt.tz is not None:
        raise ValueError(f"{path}: expected naive source timestamps, got {times.dt.tz}")
    return _to_series(times.dt.tz_localize("UTC"), frame["intensity_g_per_kwh"], path)


def read_excerpt_csv(path: Path) -> pd.Series:
    """Read one of our ``slot_start,intensity_g_per_kwh`` files (ISO UTC, ``Z``)."""
    frame = _read_renamed(path)
    times = parse_utc_times(frame["slot_start"], f"{path}: slot_start")
    return _to_series(times, frame["intensity_g_per_kwh"], path)


def _read_renamed(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path).rename(columns=VARIABLE_MAP)
    missing = {"slot_start", "intensity_g_per_kwh"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}, has {list(frame.columns)}")
    return frame


def _to_series(times: pd.Series | pd.DatetimeIndex, values: pd.Series, path: Path) -> pd.Series:
    index = pd.DatetimeIndex(times, name="slot_start")
    series = pd.Series(values.to_numpy(dtype=float), index=index, name="intensity_g_per_kwh")
    if len(series) < 2:
        raise ValueError(f"{path}: need at least 2 rows to infer the resolution")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError(f"{path}: timestamps must be strictly increasing")
    if not np.isfinite(series.to_numpy()).all() or (series < 0).any():
        raise ValueError(f"{path}: intensity_g_per_kwh must be finite and >= 0")
    return series


def _require_region(region: str) -> str:
    if region not in REGIONS:
        raise ValueError(f"region must be one of {list(REGIONS)}, got {region!r}")
    return region


def load_intensity_series(region: Region | str, data_dir: Path | None = None) -> pd.Series:
    """Average carbon intensity of ``region`` [gCO2-eq/kWh] at its native resolution.

    Returns a float Series named ``intensity_g_per_kwh`` on a UTC index of interval starts.
    Reads the full source file from ``data_dir`` if given, else the shipped excerpt.
    """
    region = _require_region(region)
    if data_dir is None:
        parts = []
        for name in EXCERPT_FILES[region]:
            with resources.as_file(resources.files("forecasting") / "data" / name) as path:
                parts.append(read_excerpt_csv(path))
        series = pd.concat(parts)
        if not series.index.is_monotonic_increasing or not series.index.is_unique:
            raise ValueError(f"excerpt files {EXCERPT_FILES[region]} overlap or are out of order")
        return series
    path = Path(data_dir) / SOURCE_FILES[region]
    if not path.is_file():
        raise FileNotFoundError(f"carbon intensity source for region {region} not found: {path}")
    return read_source_csv(path)


def intensity_on_grid(
    region: Region | str, grid: SlotGrid, data_dir: Path | None = None
) -> np.ndarray:
    """Slot-mean average carbon intensity of ``region`` on ``grid`` [gCO2-eq/kWh].

    Raises ``IntensityCoverageError`` naming the region and the missing period if the data
    (the shipped excerpt unless ``data_dir`` is given) do not cover the whole grid.
    """
    series = load_intensity_series(region, data_dir)
    return resample_to_grid(series, grid, source=intensity_source(region, data_dir))


def intensity_source(region: str, data_dir: Path | None) -> str:
    """How errors name the intensity data of ``region``."""
    origin = (
        "shipped excerpt; the full 2020 files cover other dates"
        if data_dir is None
        else f"files in {data_dir}"
    )
    return f"carbon intensity for region {region} ({origin})"


def resample_to_grid(series: pd.Series, grid: SlotGrid, source: str = "series") -> np.ndarray:
    """Time-weighted slot means of an intensity step series [gCO2-eq/kWh].

    ``series`` has a strictly increasing UTC index of interval starts; a spacing above
    ``MAX_SAMPLE_SPACING`` is missing data (see ``forecasting.resample``). Raises
    ``IntensityCoverageError`` naming ``source`` and the missing period.
    """
    try:
        return hold_means(series, grid, MAX_SAMPLE_SPACING, source)
    except CoverageError as exc:
        raise IntensityCoverageError(str(exc)) from exc
