"""Simulated time [UTC]: a clock a driver steps, and a clock that runs faster than the wall.

Both are callables returning the current simulated moment, the shape every part that reads
a clock takes (`Callable[[], datetime]`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


class SteppedClock:
    """Time that moves only when the driver sets `now` (the demo's lock-step, chaos runs)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    @property
    def now(self) -> datetime:
        return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        self._now = value
        self._set_wall_s = time.monotonic()

    def __call__(self) -> datetime:
        return self.now

    def within(self, step: timedelta) -> Callable[[], datetime]:
        """A clock for people acting between the driver's steps (the demo's console): `now`
        plus the wall time since it was set, short of the next step `step` later. What they
        do is then newer than what the world reported at the step."""

        def read() -> datetime:
            elapsed = timedelta(seconds=time.monotonic() - self._set_wall_s)
            return self._now + min(elapsed, step - timedelta(milliseconds=1))

        return read


@dataclass(frozen=True)
class ScaledClock:
    """`origin` at wall time `origin_wall_s` [s since the epoch], running `scale` times faster
    than the wall clock."""

    origin: datetime
    origin_wall_s: float
    scale: float

    def __call__(self) -> datetime:
        return self.at(time.time())

    def at(self, wall_s: float) -> datetime:
        """The simulated time at wall time `wall_s` [s since the epoch]."""
        return self.origin + timedelta(seconds=self.scale * (wall_s - self.origin_wall_s))

    def wall_s(self, moment: datetime) -> float:
        """The wall time [s since the epoch] at which the simulated time is `moment`."""
        return self.origin_wall_s + (moment - self.origin).total_seconds() / self.scale

    def next_boundary(self, wall_s: float, slot: timedelta) -> datetime:
        """The first slot boundary (slots of `slot` from `origin`) at or after `wall_s`."""
        return self.origin + math.ceil((self.at(wall_s) - self.origin) / slot) * slot
