"""Average (location-based) grid carbon intensity, 2020, for DE, GB and FR.

The values are the *average* intensity of the electricity generated (plus imports) in each
region, in lifecycle gCO2-eq per kWh, as published with Wiesner et al., "Let's Wait
Awhile", Middleware '21 (doi:10.1145/3464298.3493399), from ENTSO-E generation data. They
are not marginal emission factors and must not be used as such.

Sources
-------
* Default: the excerpt shipped in ``forecasting/data/`` (2020-05-31T00:00Z up to
  2020-07-01T00:00Z, native resolution), see ``forecasting/data/README.md``.
* ``data_dir``: a directory holding the full source files ``ger_ci.csv``, ``gb_ci.csv`` and
  ``fr_ci.csv`` (in this project: ``../shared/data/carbon-intensity/``).

Assumptions (the source documents neither)
-------------------------------------------
* Source timestamps are UTC (inferred: no DST gap or duplicate, intensity dips at solar
  noon UTC).
* A timestamp is the START of its interval: a value holds from its timestamp until the
  next one; the last value holds for the preceding spacing. A spacing above
  ``MAX_SAMPLE_SPACING`` (1 h) is missing data. A shorter irregularity, such as the two
  missing German quarter-hours on 2020-12-19, is bridged by holding the previous value.

On a slot grid, a slot's value is the time-weighted mean of this step function over the
slot: the mean of the finer samples inside it, or the held value of a coarser sample.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Final, Literal, get_args

import numpy as np
import pandas as pd

from forecasting.timegrid import SlotGrid

Region = Literal["DE", "GB", "FR"]
REGIONS: Final[tuple[str, ...]] = get_args(Region)

#: Full source files (Let's Wait Awhile repository, ``data/``) by region.
SOURCE_FILES: Final[dict[str, str]] = {"DE": "ger_ci.csv", "GB": "gb_ci.csv", "FR": "fr_ci.csv"}
#: Shipped excerpts in ``forecasting/data/`` by region.
EXCERPT_FILES: Final[dict[str, str]] = {
    region: f"intensity_{region.lower()}_2020-06.csv" for region in REGIONS
}
#: Source column -> glossary name.
VARIABLE_MAP: Final[dict[str, str]] = {
    "Time": "slot_start",
    "Carbon Intensity": "intensity_g_per_kwh",
}
MAX_SAMPLE_SPACING: Final = timedelta(hours=1)


class IntensityCoverageError(ValueError):
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
    times = pd.to_datetime(frame["slot_start"], format="ISO8601")
    if times.dt.tz is None:
        raise ValueError(f"{path}: slot_start must carry a UTC offset (e.g. 'Z'), got naive")
    return _to_series(times.dt.tz_convert("UTC"), frame["intensity_g_per_kwh"], path)


def _read_renamed(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path).rename(columns=VARIABLE_MAP)
    missing = {"slot_start", "intensity_g_per_kwh"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}, has {list(frame.columns)}")
    return frame


def _to_series(times: pd.Series, values: pd.Series, path: Path) -> pd.Series:
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
    Reads the full source file from ``data_dir`` if given, else the shipped June 2020 excerpt.
    """
    region = _require_region(region)
    if data_dir is None:
        excerpt = resources.files("forecasting") / "data" / EXCERPT_FILES[region]
        with resources.as_file(excerpt) as path:
            return read_excerpt_csv(path)
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
    origin = "shipped excerpt" if data_dir is None else f"files in {data_dir}"
    return resample_to_grid(series, grid, source=f"region {region} ({origin})")


def resample_to_grid(series: pd.Series, grid: SlotGrid, source: str = "series") -> np.ndarray:
    """Time-weighted slot means of a step series (values hold from their timestamp on).

    ``series`` has a strictly increasing UTC index of interval starts; see the module
    docstring for how intervals end. ``source`` names the data in errors.
    """
    index = series.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError(f"{source}: index must be a timezone-aware DatetimeIndex")
    starts = index.tz_convert("UTC").as_unit("ns").asi8
    values = series.to_numpy(dtype=float)
    ends = _interval_ends_ns(starts)
    grid_start = _ns(grid.start)
    grid_end = _ns(grid.end)
    _require_coverage(starts, ends, grid_start, grid_end, grid, source)

    slot_ns = grid.slot_minutes * 60 * 1_000_000_000
    grid_bounds = grid_start + slot_ns * np.arange(grid.slots + 1, dtype=np.int64)
    inner = starts[(starts > grid_start) & (starts < grid_end)]
    bounds = np.union1d(grid_bounds, inner)
    seg_start, seg_len = bounds[:-1], np.diff(bounds)
    seg_value = values[np.searchsorted(starts, seg_start, side="right") - 1]
    seg_slot = (seg_start - grid_start) // slot_ns
    sums = np.bincount(seg_slot, weights=seg_value * seg_len, minlength=grid.slots)
    return sums / slot_ns


def _ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).as_unit("ns").value)


def _interval_ends_ns(starts: np.ndarray) -> np.ndarray:
    """End of each sample's interval [ns]: the next start, unless that is a gap."""
    max_ns = _ns_delta(MAX_SAMPLE_SPACING)
    spacing = np.diff(starts)
    previous = np.concatenate([spacing[:1], spacing])  # spacing before each sample
    following = np.append(starts[1:], starts[-1] + previous[-1])
    gap = following - starts > max_ns
    return np.where(gap, starts + np.minimum(previous, max_ns), following)


def _ns_delta(delta: timedelta) -> int:
    return int(pd.Timedelta(delta).as_unit("ns").value)


def _require_coverage(
    starts: np.ndarray,
    ends: np.ndarray,
    grid_start: int,
    grid_end: int,
    grid: SlotGrid,
    source: str,
) -> None:
    inner_holes = np.flatnonzero(ends[:-1] < starts[1:])
    holes = [
        (grid_start, int(starts[0])),
        *((int(ends[i]), int(starts[i + 1])) for i in inner_holes),
        (int(ends[-1]), grid_end),
    ]
    clipped = ((max(lo, grid_start), min(hi, grid_end)) for lo, hi in holes)
    missing = [f"{_iso(lo)} to {_iso(hi)}" for lo, hi in clipped if lo < hi]
    if missing:
        raise IntensityCoverageError(
            f"carbon intensity for {source} is missing for {', '.join(missing)}; "
            f"requested {_iso(grid_start)} to {_iso(grid_end)} "
            f"({grid.slots} x {grid.slot_minutes} min), data span {_iso(int(starts[0]))} "
            f"to {_iso(int(ends[-1]))}"
        )


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")
