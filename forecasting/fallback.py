"""A clearly labelled fallback intensity forecast for any date, from the real 2020 series.

The planner needs an intensity value for every slot of its horizon. When no live feed and
no published forecast covers a slot, it can plan on this fallback instead of not planning.
It is built from the real 2020 average intensity of the region (``forecasting.carbon``),
moved to the target date by *season, weekday and hour*, in the region's civil time
(``REGION_TIMEZONES``: demand follows local weekdays and hours). For every minute of a target
slot:

1. **Same week.** The 2020 value at the same ISO week of the year, ISO weekday and local
   time of day (2026-06-10, Wednesday of week 24, 14:05 CEST takes 2020-06-10, Wednesday of
   week 24, 14:05 CEST), wherever the 2020 data hold that minute.
2. **Weekday mean.** Otherwise the mean, over every day of the 2020 data with the same
   weekday, of the value at the same local time of day.

A slot's value is the mean of its minutes (the data are step series starting on whole
minutes, so this is their exact time-weighted mean).

What "same season" means with the shipped excerpt. It holds 17 May to 30 June 2020 (UTC):
rule 1 applies from the small hours of Sunday 17 May to the small hours of Wednesday 1 July
local time, i.e. ISO weeks 21 to 26 whole and Monday and Tuesday of week 27. Outside those
weeks the excerpt has no same-season data, and the fallback is the *average week of late
spring and early summer 2020* (rule 2): the right weekday and hour pattern (weekends,
the midday solar dip), but a summer level and shape. In winter German and British intensity
is higher and the solar dip weaker than this says. It keeps planning going and ranks the
slots of a day; never account emissions on it. With the full 2020 files (``data_dir``),
rule 1 covers every week of the year.

Every fallback says so: ``FallbackValues.source`` begins with ``"fallback:"``, names the
region, the rule(s) used and the date it was shifted to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import numpy as np
import pandas as pd

from forecasting.carbon import MAX_SAMPLE_SPACING
from forecasting.resample import held_or_nan
from forecasting.timegrid import require_utc_datetime, require_utc_index

MINUTES_PER_DAY: Final = 24 * 60
_HALF_MINUTE: Final = pd.Timedelta(seconds=30)


@dataclass(frozen=True)
class FallbackValues:
    """A fallback forecast on a slot grid, and what it was made of."""

    intensity_g_per_kwh: np.ndarray  # one slot mean per slot [gCO2/kWh]
    same_week_frac: float  # share of the minutes taken from the same week (rule 1) [-]
    source: str  # "fallback: <region> 2020 ..., shifted to <date>"


@dataclass(frozen=True)
class FallbackProfile:
    """A region's real series as local days of minutes, and its mean day per weekday.

    ``days[d, m]`` is the value at local minute ``m`` of local day ``first_day + d`` [gCO2/kWh],
    NaN where the data hold nothing; ``weekday_mean[w, m]`` the mean over every day of ISO
    weekday ``w + 1`` (Monday first) at minute ``m``.
    """

    region: str
    timezone: str
    first_day: date
    days: np.ndarray
    weekday_mean: np.ndarray
    iso_year: int  # the ISO year the data's weeks are counted in
    data_first: date  # first and last UTC day holding data (for the label)
    data_last: date

    @classmethod
    def from_series(cls, series: pd.Series, region: str, timezone: str) -> FallbackProfile:
        """The profile of an intensity step series (``forecasting.carbon`` conventions).

        Raises ``ValueError`` unless the series holds every weekday at every time of day
        (at least one whole week).
        """
        index = require_utc_index(series.index, f"{region} intensity index")
        if len(index) < 2:
            raise ValueError(f"{region}: need at least 2 samples, got {len(index)}")
        last_end = index[-1] + (index[-1] - index[-2])
        first_day = index[0].tz_convert(timezone).date()
        last_day = (last_end - pd.Timedelta(1, "ns")).tz_convert(timezone).date()
        midnight = pd.Timestamp(first_day).tz_localize(timezone)
        after = pd.Timestamp(last_day + timedelta(days=1)).tz_localize(timezone)
        minutes = pd.date_range(midnight, after, freq="1min", inclusive="left")
        values = held_or_nan(
            series, (minutes + _HALF_MINUTE).tz_convert("UTC"), MAX_SAMPLE_SPACING, region
        )
        local = minutes + _HALF_MINUTE
        rows = _ordinals(local) - first_day.toordinal()
        days = np.full((last_day.toordinal() - first_day.toordinal() + 1, MINUTES_PER_DAY), np.nan)
        days[rows, _minute_of_day(local)] = values  # a repeated (autumn) hour: the later one
        weekdays = np.array(
            [(first_day + timedelta(days=d)).isoweekday() - 1 for d in range(len(days))]
        )
        weekday_mean = np.stack([_nan_mean(days[weekdays == w]) for w in range(7)])
        if not np.isfinite(weekday_mean).all():
            raise ValueError(
                f"{region}: the data must hold every weekday at every time of day "
                "(at least one whole week)"
            )
        return cls(
            region=region,
            timezone=timezone,
            first_day=first_day,
            days=days,
            weekday_mean=weekday_mean,
            iso_year=index[len(index) // 2].isocalendar()[0],
            data_first=index[0].date(),
            data_last=index[-1].date(),
        )

    def values(self, start: datetime, slot_minutes: int, slots: int) -> FallbackValues:
        """The fallback on ``slots`` slots of ``slot_minutes`` from ``start`` (any dates)."""
        start = require_utc_datetime(start, "start")
        if slot_minutes < 1 or slots < 1:
            raise ValueError(f"need slot_minutes >= 1 and slots >= 1, got {slot_minutes}, {slots}")
        if start.second or start.microsecond:
            raise ValueError(f"start must be on a whole minute, got {start.isoformat()}")
        utc = pd.date_range(start, periods=slots * slot_minutes, freq="1min") + _HALF_MINUTE
        local = utc.tz_convert(self.timezone)
        iso = local.isocalendar()
        week = iso["week"].to_numpy(dtype=np.int64)
        weekday = iso["day"].to_numpy(dtype=np.int64)
        minute = _minute_of_day(local)
        # The day of the data's ISO year with the same ISO week and weekday.
        week1_monday = date.fromisocalendar(self.iso_year, 1, 1).toordinal()
        row = week1_monday + (week - 1) * 7 + (weekday - 1) - self.first_day.toordinal()
        inside = (row >= 0) & (row < len(self.days))
        same = np.where(inside, self.days[np.clip(row, 0, len(self.days) - 1), minute], np.nan)
        use_same = np.isfinite(same)
        value = np.where(use_same, same, self.weekday_mean[weekday - 1, minute])
        per_slot = value.reshape(slots, slot_minutes).mean(axis=1)
        same_week_frac = float(use_same.mean())
        return FallbackValues(per_slot, same_week_frac, self._source(same_week_frac, start))

    def _source(self, same_week_frac: float, start: datetime) -> str:
        first, last = self.data_first, self.data_last
        span = f"{first.day} {first:%b}-{last.day} {last:%b %Y}"
        head = f"fallback: {self.region} {self.iso_year}"
        if same_week_frac == 1.0:
            rule = "same ISO week, weekday and hour"
        elif same_week_frac == 0.0:
            rule = f"same weekday and hour, mean over {span}"
        else:
            rule = f"same ISO week, weekday and hour where held, else weekday-hour mean over {span}"
        return f"{head} {rule}, shifted to {start.date().isoformat()}"


def _ordinals(local: pd.DatetimeIndex) -> np.ndarray:
    """Proleptic Gregorian ordinal of each local date."""
    days = local.tz_localize(None).normalize()
    epoch = date(1970, 1, 1).toordinal()
    return np.asarray((days - pd.Timestamp(0)).days, dtype=np.int64) + epoch


def _minute_of_day(local: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(local.hour * 60 + local.minute, dtype=np.int64)


def _nan_mean(rows: np.ndarray) -> np.ndarray:
    """Mean over the rows, ignoring NaN; NaN where every row is NaN (no warning)."""
    finite = np.isfinite(rows)
    count = finite.sum(axis=0)
    total = np.where(finite, rows, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.full(rows.shape[1], np.nan), where=count > 0)
