"""Simulated time [UTC]: a clock a driver steps, and a clock that runs faster than the wall.

Both are callables returning the current simulated moment, the shape every part that reads
a clock takes (`Callable[[], datetime]`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta


class SteppedClock:
    """Time that moves only when the driver sets `now` (the demo's lock-step, chaos runs)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
