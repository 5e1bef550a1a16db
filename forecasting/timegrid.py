"""Slot grids: the time axis that every forecast and plan shares.

A grid is ``slots`` consecutive, equal, left-labelled slots ``[start, start + Δ)`` with
``Δ = slot_minutes``. Everything is UTC and timezone-aware; a naive datetime raises.
Slot boundaries are aligned to UTC midnight, so ``slot_minutes`` must divide a day.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

MINUTES_PER_DAY = 24 * 60
#: An ISO 8601 text ends with its UTC offset: ``Z``, ``+01:00``, ``-0500`` or ``+01``.
_OFFSET_SUFFIX = re.compile(r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$")


def require_utc_datetime(value: object, field: str) -> datetime:
    """Return ``value`` as a UTC ``datetime``; raise if it is not a timezone-aware datetime.

    ``field`` names the offending field in the error message. An aware datetime in another
    zone is converted to UTC (same instant).
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware (UTC), got naive {value.isoformat()}")
    moment: datetime = value
    if isinstance(value, pd.Timestamp):
        if value.nanosecond:
            raise ValueError(f"{field} has sub-microsecond precision: {value}")
        moment = value.to_pydatetime()
    return moment.astimezone(UTC)


def require_utc_index(index: pd.Index, field: str) -> pd.DatetimeIndex:
    """Return ``index`` as a UTC ``DatetimeIndex``; raise if it is naive or not datetimes."""
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{field} must be a DatetimeIndex, got {type(index).__name__}")
    if index.tz is None:
        raise ValueError(f"{field} must be timezone-aware (UTC), got a naive DatetimeIndex")
    return index.tz_convert("UTC")


def parse_utc_times(texts: Iterable[str], field: str) -> pd.DatetimeIndex:
    """ISO 8601 texts with offsets as a UTC ``DatetimeIndex`` named ``field``.

    Offsets may differ from row to row (local time across a DST change is fine: each text
    is one instant). A text without an offset is naive and raises, naming ``field``.
    """
    values = [str(text).strip() for text in texts]
    naive = [value for value in values if not _OFFSET_SUFFIX.search(value)]
    if naive:
        raise ValueError(
            f"{field} must carry a UTC offset ('Z' or e.g. '+01:00'); {len(naive)} naive "
            f"value(s), first {naive[0]!r}"
        )
    try:
        times = pd.to_datetime(values, format="ISO8601", utc=True)
    except (TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0]
        raise ValueError(f"{field}: not an ISO 8601 timestamp: {reason}") from exc
    return pd.DatetimeIndex(times, name=field)


@dataclass(frozen=True)
class SlotGrid:
    """``slots`` left-labelled slots of ``slot_minutes`` starting at ``start`` (UTC).

    Attributes
    ----------
    start : datetime
        Start of slot 0 [UTC, timezone-aware], on a slot boundary counted from UTC midnight.
    slot_minutes : int
        Slot length [min]; a positive divisor of 1440.
    slots : int
        Number of slots [-], at least 1.
    """

    start: datetime
    slot_minutes: int
    slots: int

    def __post_init__(self) -> None:
        start = require_utc_datetime(self.start, "start")
        object.__setattr__(self, "start", start)
        for field in ("slot_minutes", "slots"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"{field} must be an int, got {type(value).__name__}")
            object.__setattr__(self, field, int(value))
        if self.slot_minutes <= 0 or MINUTES_PER_DAY % self.slot_minutes:
            raise ValueError(
                f"slot_minutes must be a positive divisor of {MINUTES_PER_DAY}, "
                f"got {self.slot_minutes}"
            )
        if self.slots < 1:
            raise ValueError(f"slots must be >= 1, got {self.slots}")
        minute_of_day = start.hour * 60 + start.minute
        if start.second or start.microsecond or minute_of_day % self.slot_minutes:
            raise ValueError(
                f"start {start.isoformat()} is not on a {self.slot_minutes}-minute slot "
                "boundary (counted from UTC midnight)"
            )

    @classmethod
    def between(cls, start: datetime, end: datetime, slot_minutes: int) -> SlotGrid:
        """Grid covering ``[start, end)`` exactly; ``end - start`` must be whole slots."""
        start_utc = require_utc_datetime(start, "start")
        end_utc = require_utc_datetime(end, "end")
        span = end_utc - start_utc
        step = timedelta(minutes=slot_minutes)
        if span <= timedelta(0) or span % step:
            raise ValueError(
                f"end - start = {span} is not a positive whole number of "
                f"{slot_minutes}-minute slots"
            )
        return cls(start=start_utc, slot_minutes=slot_minutes, slots=span // step)

    @property
    def slot(self) -> timedelta:
        """Slot length as a timedelta."""
        return timedelta(minutes=self.slot_minutes)

    @property
    def dt_h(self) -> float:
        """Slot length [h]; ``energy_kwh = power_kw * dt_h``."""
        return self.slot_minutes / 60.0

    @property
    def end(self) -> datetime:
        """End of the last slot (exclusive) [UTC]."""
        return self.start + self.slots * self.slot

    def slot_start(self, i: int) -> datetime:
        """Start of slot ``i`` [UTC], for ``0 <= i < slots`` (no negative indexing)."""
        if not 0 <= i < self.slots:
            raise IndexError(f"slot index {i} outside 0..{self.slots - 1}")
        return self.start + i * self.slot

    @property
    def index(self) -> pd.DatetimeIndex:
        """Left labels of all slots, a UTC ``DatetimeIndex`` named ``slot_start``."""
        return pd.date_range(
            self.start, periods=self.slots, freq=f"{self.slot_minutes}min", name="slot_start"
        )

    def sample_times(self, per_slot: int) -> pd.DatetimeIndex:
        """Midpoints of ``per_slot`` equal sub-steps in every slot [UTC], slot-major order.

        Averaging instantaneous values at these times is the midpoint rule for the slot mean.
        """
        if per_slot < 1:
            raise ValueError(f"per_slot must be >= 1, got {per_slot}")
        offsets_s = (np.arange(per_slot) + 0.5) * (self.slot_minutes * 60.0 / per_slot)
        times = self.index.repeat(per_slot) + pd.to_timedelta(
            np.tile(offsets_s, self.slots), unit="s"
        )
        return pd.DatetimeIndex(times, name="sample_time")

    def slot_of(self, times: pd.DatetimeIndex) -> np.ndarray:
        """Slot index of each time [-]; raises if a time lies outside ``[start, end)``."""
        utc = require_utc_index(times, "times")
        start = pd.Timestamp(self.start)
        end = pd.Timestamp(self.end)
        outside = (utc < start) | (utc >= end)
        if outside.any():
            raise ValueError(
                f"{int(outside.sum())} time(s) outside the grid "
                f"[{start.isoformat()}, {end.isoformat()}), first {utc[outside][0].isoformat()}"
            )
        step_s = self.slot_minutes * 60
        elapsed_s = (utc - start).total_seconds().to_numpy()
        return np.floor(elapsed_s / step_s).astype(np.int64)
