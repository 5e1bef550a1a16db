"""Step series on slot grids: samples that hold from their timestamp until the next one.

Carbon intensity, weather and PV power arrive as samples labelled by the START of the
interval they describe. A sample holds until the next sample starts; the last one holds for
the spacing before it. A spacing above ``max_spacing`` is missing data: the sample then
holds for at most ``max_spacing`` and the rest of the spacing is a hole. Any part of a
requested period that no sample covers raises ``CoverageError`` naming the missing spans.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from forecasting.timegrid import SlotGrid, require_utc_index


class CoverageError(ValueError):
    """The data do not cover a requested period."""


def regular_spacing(index: pd.DatetimeIndex, source: str) -> timedelta:
    """The most common spacing of a strictly increasing UTC index (its resolution)."""
    starts = _starts_ns(index, source)
    if len(starts) < 2:
        raise ValueError(f"{source}: need at least 2 samples to infer the resolution")
    spacings, counts = np.unique(np.diff(starts), return_counts=True)
    return pd.Timedelta(int(spacings[np.argmax(counts)]), unit="ns").to_pytimedelta()


def hold_means(
    series: pd.Series, grid: SlotGrid, max_spacing: timedelta, source: str = "series"
) -> np.ndarray:
    """Time-weighted mean of the step series over each slot of ``grid``.

    A slot finer than the samples gets the held value; a coarser slot the mean of the
    samples inside it, weighted by how long each holds. ``source`` names the data in errors.
    """
    starts = _starts_ns(series.index, source)
    values = series.to_numpy(dtype=float)
    ends = _interval_ends_ns(starts, max_spacing)
    grid_start, grid_end = _ns(grid.start), _ns(grid.end)
    _require_coverage(starts, ends, grid_start, grid_end, source)

    slot_ns = grid.slot_minutes * 60 * 1_000_000_000
    grid_bounds = grid_start + slot_ns * np.arange(grid.slots + 1, dtype=np.int64)
    inner = starts[(starts > grid_start) & (starts < grid_end)]
    bounds = np.union1d(grid_bounds, inner)
    seg_start, seg_len = bounds[:-1], np.diff(bounds)
    seg_value = values[np.searchsorted(starts, seg_start, side="right") - 1]
    seg_slot = (seg_start - grid_start) // slot_ns
    sums = np.bincount(seg_slot, weights=seg_value * seg_len, minlength=grid.slots)
    return sums / slot_ns


def held_values(
    frame: pd.DataFrame, times: pd.DatetimeIndex, max_spacing: timedelta, source: str = "data"
) -> pd.DataFrame:
    """The rows of a step frame that hold at each of ``times`` [UTC], indexed by ``times``."""
    starts = _starts_ns(frame.index, source)
    at = require_utc_index(times, "times").as_unit("ns").asi8
    ends = _interval_ends_ns(starts, max_spacing)
    row = np.searchsorted(starts, at, side="right") - 1
    covered = (row >= 0) & (at < ends[np.maximum(row, 0)])
    if not covered.all():
        holes = []
        for r in np.unique(row[~covered]):
            if r < 0:
                holes.append(f"before {_iso(int(starts[0]))}")
            elif r + 1 == len(starts):
                holes.append(f"from {_iso(int(ends[r]))}")
            else:
                holes.append(f"{_iso(int(ends[r]))} to {_iso(int(starts[r + 1]))}")
        raise CoverageError(
            f"{source} is missing for {', '.join(holes)}; data span "
            f"{_iso(int(starts[0]))} to {_iso(int(ends[-1]))}"
        )
    return frame.iloc[row].set_axis(times, axis=0)


def held_or_nan(
    series: pd.Series, times: pd.DatetimeIndex, max_spacing: timedelta, source: str = "series"
) -> np.ndarray:
    """The value of the step series at each of ``times`` [UTC]; NaN where no sample holds
    (before the first, in a gap above ``max_spacing``, after the last one ends)."""
    starts = _starts_ns(series.index, source)
    values = series.to_numpy(dtype=float)
    at = require_utc_index(times, "times").as_unit("ns").asi8
    ends = _interval_ends_ns(starts, max_spacing)
    row = np.searchsorted(starts, at, side="right") - 1
    covered = (row >= 0) & (at < ends[np.maximum(row, 0)])
    return np.where(covered, values[np.maximum(row, 0)], np.nan)


def _starts_ns(index: pd.Index, source: str) -> np.ndarray:
    utc = require_utc_index(index, f"{source} index")
    starts = utc.as_unit("ns").asi8
    if len(starts) == 0:
        raise ValueError(f"{source}: no samples")
    if (np.diff(starts) <= 0).any():
        raise ValueError(f"{source}: timestamps must be strictly increasing")
    return starts


def _ns(moment: datetime) -> int:
    return int(pd.Timestamp(moment).as_unit("ns").value)


def _interval_ends_ns(starts: np.ndarray, max_spacing: timedelta) -> np.ndarray:
    """End of each sample's interval [ns]: the next start, unless that is a gap."""
    max_ns = int(pd.Timedelta(max_spacing).as_unit("ns").value)
    spacing = np.diff(starts)
    previous = np.concatenate([spacing[:1], spacing]) if len(spacing) else np.array([max_ns])
    following = np.append(starts[1:], starts[-1] + previous[-1])
    gap = following - starts > max_ns
    return np.where(gap, starts + np.minimum(previous, max_ns), following)


def _require_coverage(
    starts: np.ndarray, ends: np.ndarray, grid_start: int, grid_end: int, source: str
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
        raise CoverageError(
            f"{source} is missing for {', '.join(missing)}; requested {_iso(grid_start)} to "
            f"{_iso(grid_end)}, data span {_iso(int(starts[0]))} to {_iso(int(ends[-1]))}"
        )


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%MZ")
