"""Day-ahead forecasts of grid carbon intensity on the slot grid.

A forecast is issued at the start of a grid, from intensity strictly before that moment,
for the next 24 hours (longer grids repeat the step, feeding each day's forecast back in
as history). Every forecaster sees the same history: whole days of slot means ending at
the issue time, ``past[-1]`` being the 24 hours just before it.

Forecasters
-----------
``persistence``
    The baseline: each slot as it was 24 hours earlier.
``seasonal-blend``
    ``0.7 * yesterday + 0.3 * same slot a week earlier`` (weekly cycle of demand).
``lagged-ridge``
    Ridge regression (numpy, closed form) on, per slot: yesterday's value, the value a week
    earlier, the last value before the issue time, and the gap between that last value and
    yesterday's same slot, decaying with lead time (``exp(-lead_h / 12)``: a level shift
    seen at issue time persists for the first hours). Refit at every issue on up to 28
    days before it (at least 7, each needing its week-old lag: 14 days of history),
    features standardised, intercept not penalised.

Measured on the real 2020 series (``idlefleet bench forecast``), the ridge is kept as
``BEST``: its settings were chosen on January-June 2020 and it is scored on July-December.
With too little history for it, ``day_ahead`` falls back to the next forecaster in
``FORECASTERS`` that fits and says which one it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar, Protocol

import numpy as np
import pandas as pd

from forecasting.carbon import IntensityCoverageError, resample_to_grid
from forecasting.timegrid import MINUTES_PER_DAY, SlotGrid

DAY = timedelta(days=1)


class Forecaster(Protocol):
    """Predicts the next day's slots from whole past days."""

    name: ClassVar[str]

    @property
    def min_history_days(self) -> int:
        """Fewest whole days of history it can forecast from."""
        ...

    @property
    def max_history_days(self) -> int:
        """Most whole days of history it uses."""
        ...

    def predict(self, past: np.ndarray, dt_h: float) -> np.ndarray:
        """The next day [gCO2/kWh] from ``past``, shape (days, slots per day), oldest first."""
        ...


@dataclass(frozen=True)
class Persistence:
    """Yesterday's same slot."""

    name: ClassVar[str] = "persistence"
    min_history_days: ClassVar[int] = 1
    max_history_days: ClassVar[int] = 1

    def predict(self, past: np.ndarray, dt_h: float) -> np.ndarray:
        return np.asarray(past[-1], dtype=float)


@dataclass(frozen=True)
class SeasonalBlend:
    """A fixed blend of yesterday's and last week's same slot."""

    name: ClassVar[str] = "seasonal-blend"
    yesterday_weight_frac: float = 0.7
    min_history_days: ClassVar[int] = 7
    max_history_days: ClassVar[int] = 7

    def predict(self, past: np.ndarray, dt_h: float) -> np.ndarray:
        weight = self.yesterday_weight_frac
        return np.asarray(weight * past[-1] + (1.0 - weight) * past[-7], dtype=float)


@dataclass(frozen=True)
class LaggedRidge:
    """Ridge regression on lagged days, the last observed value and its decaying offset."""

    name: ClassVar[str] = "lagged-ridge"
    window_days: int = 28
    min_train_days: int = 7
    decay_h: float = 12.0
    alpha: float = 1e-2
    lag_days: ClassVar[int] = 7

    @property
    def min_history_days(self) -> int:
        return self.lag_days + self.min_train_days

    @property
    def max_history_days(self) -> int:
        return self.lag_days + self.window_days

    def predict(self, past: np.ndarray, dt_h: float) -> np.ndarray:
        days = len(past)
        if days < self.min_history_days:
            raise ValueError(f"{self.name} needs {self.min_history_days} days, got {days}")
        decay = np.exp(-(np.arange(past.shape[1]) + 0.5) * dt_h / self.decay_h)
        train = range(max(self.lag_days, days - self.window_days), days)
        x = np.vstack([self._features(past[:t], decay) for t in train])
        y = np.concatenate([past[t] for t in train])
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        xs = np.column_stack([(x - mean) / scale, np.ones(len(x))])
        penalty = self.alpha * len(y) * np.diag([1.0] * x.shape[1] + [0.0])
        beta = np.linalg.solve(xs.T @ xs + penalty, xs.T @ y)
        target = (self._features(past, decay) - mean) / scale
        return np.asarray(np.column_stack([target, np.ones(len(target))]) @ beta, dtype=float)

    def _features(self, before: np.ndarray, decay: np.ndarray) -> np.ndarray:
        """Features of the day after ``before`` (whole days, oldest first), one row a slot."""
        yesterday, last_week = before[-1], before[-self.lag_days]
        last = np.full_like(yesterday, yesterday[-1])
        return np.column_stack([yesterday, last_week, last, (last - yesterday) * decay])


BEST: Forecaster = LaggedRidge()
#: Every forecaster, best first: ``day_ahead`` tries them in turn when history is short.
FORECASTERS: tuple[Forecaster, ...] = (BEST, SeasonalBlend(), Persistence())


@dataclass(frozen=True)
class DayAhead:
    """A forecast on a grid and the forecaster that made it."""

    intensity_g_per_kwh: np.ndarray
    forecaster: str


def slots_per_day(slot_minutes: int) -> int:
    return MINUTES_PER_DAY // slot_minutes


def history_days(series: pd.Series, issued_at: pd.Timestamp) -> int:
    """Whole days of ``series`` before ``issued_at`` [days]."""
    first = series.index[0]
    return max(0, math.floor((issued_at - first) / pd.Timedelta(DAY)))


def day_ahead(
    series: pd.Series,
    grid: SlotGrid,
    forecasters: tuple[Forecaster, ...] = FORECASTERS,
    source: str = "intensity",
) -> DayAhead:
    """Forecast ``grid`` from the step series ``series`` before ``grid.start`` [gCO2/kWh].

    Uses the first of ``forecasters`` that the available whole days of history allow.
    Raises ``IntensityCoverageError`` naming ``source`` when there is not even one day of history
    (or the history has a gap).
    """
    issued = pd.Timestamp(grid.start)
    available = history_days(series, issued)
    usable = [f for f in forecasters if f.min_history_days <= available]
    if not usable:
        need = min(f.min_history_days for f in forecasters)
        raise IntensityCoverageError(
            f"{source}: a forecast issued at {grid.start.isoformat()} needs {need} whole "
            f"day(s) of history before it, the data hold {available}"
        )
    forecaster = usable[0]
    days = min(available, forecaster.max_history_days)
    per_day = slots_per_day(grid.slot_minutes)
    history = SlotGrid(grid.start - days * DAY, grid.slot_minutes, days * per_day)
    past = resample_to_grid(series, history, source).reshape(days, per_day)
    return DayAhead(forecast_days(forecaster, past, grid.slots, grid.dt_h), forecaster.name)


def forecast_days(forecaster: Forecaster, past: np.ndarray, slots: int, dt_h: float) -> np.ndarray:
    """``slots`` values after ``past``, a day at a time, each day's forecast fed back in."""
    days = []
    for _ in range(math.ceil(slots / past.shape[1])):
        day = np.clip(forecaster.predict(past, dt_h), 0.0, None)
        days.append(day)
        past = np.vstack([past[1:], day])
    return np.concatenate(days)[:slots]


@dataclass(frozen=True)
class Backtest:
    """Day-ahead forecasts of whole days next to what happened, shape (days, slots per day)."""

    actual_g_per_kwh: np.ndarray
    forecasts_g_per_kwh: dict[str, np.ndarray]


def backtest(
    series: pd.Series,
    days: SlotGrid,
    forecasters: tuple[Forecaster, ...] = FORECASTERS,
    source: str = "intensity",
) -> Backtest:
    """Forecast every day of ``days`` (whole UTC days) at its midnight, with each forecaster.

    Each forecaster sees at most its ``max_history_days`` before the day, and only what
    ``series`` holds; raises ``IntensityCoverageError`` if that is less than one of them needs.
    """
    per_day = slots_per_day(days.slot_minutes)
    if days.start.hour or days.start.minute or days.slots % per_day:
        raise ValueError(f"backtest needs whole UTC days, got {days}")
    count = days.slots // per_day
    issued = pd.Timestamp(days.start)
    lead = min(max(f.max_history_days for f in forecasters), history_days(series, issued))
    short = [f.name for f in forecasters if f.min_history_days > lead]
    if short:
        raise IntensityCoverageError(
            f"{source}: {short} need more than the {lead} day(s) of history before {issued}"
        )
    span = SlotGrid(days.start - lead * DAY, days.slot_minutes, (lead + count) * per_day)
    values = resample_to_grid(series, span, source).reshape(lead + count, per_day)
    forecasts = {
        f.name: np.vstack(
            [
                forecast_days(f, values[max(0, d - f.max_history_days) : d], per_day, days.dt_h)
                for d in range(lead, lead + count)
            ]
        )
        for f in forecasters
    }
    return Backtest(values[lead:], forecasts)
